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
