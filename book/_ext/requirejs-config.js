// Runs before the widget manager on every page with saved widgets.
(function () {
  // Tell RequireJS where the widget manager and anywidget live: next to this file, not on a CDN.
  var here = document.currentScript.src.replace(/requirejs-config\.js(\?.*)?$/, "");
  window.require.config({
    paths: {
      "@jupyter-widgets/html-manager/dist/libembed-amd": here + "html-manager/libembed-amd",
      "anywidget": here + "anywidget/index",
    },
  });
})();

(function () {
  // The widget manager typesets labels with MathJax 2's `MathJax.Hub.Queue`, which MathJax 3 no
  // longer has: whenever MathJax is already on the page, each label raised a TypeError. Give
  // every object assigned to `window.MathJax` (Sphinx's configuration, then MathJax itself) a
  // `Hub.Queue` that forwards to MathJax 3's `typesetPromise`.
  var hub = {
    Queue: function (command) {
      var element = command && command[2];
      var mathjax = window.MathJax;
      if (mathjax && typeof mathjax.typesetPromise === "function") {
        mathjax.typesetPromise(element ? [element] : undefined).catch(function () {});
      }
    },
  };
  function withHub(value) {
    if (value && typeof value === "object" && !value.Hub) {
      try { value.Hub = hub; } catch (e) { /* a frozen object: leave it */ }
    }
    return value;
  }
  var current = withHub(window.MathJax);
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get: function () { return current; },
    set: function (value) { current = withHub(value); },
  });
})();
