// Tell RequireJS where the widget manager's AMD bundle lives: next to this file, not on a CDN.
(function () {
  var here = document.currentScript.src.replace(/requirejs-config\.js(\?.*)?$/, "");
  window.require.config({
    paths: {"@jupyter-widgets/html-manager/dist/libembed-amd": here + "html-manager/libembed-amd"},
  });
})();
