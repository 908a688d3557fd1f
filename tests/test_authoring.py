import nbformat
import pytest

from cnn_course.authoring import AuthoringError, learner_version, out_of_date, strip_solutions


def test_answer_region_becomes_stub_with_its_indentation():
    source = ("def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n"
              "    ### END SOLUTION\n")
    assert strip_solutions(source) == (
        "def f(x):\n    y = 1\n    # YOUR CODE HERE\n    raise NotImplementedError()")


@pytest.mark.parametrize("source,problem", [
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "inside a function"),
    ("def f():\n    ### BEGIN SOLUTION\n    return 1", "without"),
    ("def f():\n    ### END SOLUTION", "without"),
    ("def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION", "nested"),
])
def test_broken_markers_are_refused(source, problem):
    with pytest.raises(AuthoringError, match=problem):
        strip_solutions(source)


def test_learner_version_clears_outputs_and_requires_a_check_cell():
    exercise = nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n"
                                         "    ### END SOLUTION", execution_count=3,
                                         outputs=[nbformat.v4.new_output("stream", text="hi")])
    check = nbformat.v4.new_code_cell("check(f)", metadata={"tags": ["check"]})
    notebook = nbformat.v4.new_notebook(cells=[exercise, check])
    learner = learner_version(notebook)
    assert learner.cells[0].outputs == [] and learner.cells[0].execution_count is None
    assert "raise NotImplementedError()" in learner.cells[0].source
    assert notebook.cells[0].outputs, "the solution itself must not change"
    with pytest.raises(AuthoringError, match="check"):
        learner_version(nbformat.v4.new_notebook(cells=[exercise]))


def test_committed_learner_notebooks_are_in_sync(root):
    assert out_of_date(root) == []
