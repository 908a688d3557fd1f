// Tell RequireJS where the widget manager and anywidget live: next to this file, not on a CDN.
(function () {
  var here = document.currentScript.src.replace(/requirejs-config\.js(\?.*)?$/, "");
  window.require.config({
    paths: {
      "@jupyter-widgets/html-manager/dist/libembed-amd": here + "html-manager/libembed-amd",
      "anywidget": here + "anywidget/index",
    },
  });
})();
