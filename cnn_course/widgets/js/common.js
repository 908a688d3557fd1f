// Shared by every explorer: the bundler (cnn_course.widgets.frontend.esm) puts this file in
// front of each explorer's own code, so these names are in scope there.
const SVG = "http://www.w3.org/2000/svg";

// Ties a visible <label> to its control, so that screen readers announce the control's name.
let controlCount = 0;
function tie(label, control, prefix) {
  if (!control.id) {
    control.id = `${prefix}-${++controlCount}-${Math.random().toString(36).slice(2, 8)}`;
  }
  label.htmlFor = control.id;
  return label;
}

// Words in the reader's language. Text is written in English, as a call of t with one string
// literal whose {fields} are filled from an object, or marked with N_ where it is defined and
// passed through t where it is shown. The widget's `translations` come from the course's
// message catalogs. The language is the notebook's when the widget names one, else the page's
// <html lang>.
let WORDS = {};
let LANGUAGE = "en";
function useLanguage(model, el) {
  const all = model.get("translations") || {};
  const holder = el.closest("[lang]") || document.documentElement;
  const language = (model.get("language") || holder.lang || "en").replace("-", "_");
  const known = language in all ? language
    : Object.keys(all).find((k) => k.split("_")[0] === language.split("_")[0]);
  LANGUAGE = known || "en";
  WORDS = all[LANGUAGE] || {};
  return LANGUAGE;
}
function N_(template) { return template; }
function t(template, fields = {}) {
  const text = WORDS[template] || template;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in fields ? fields[name] : whole));
}
