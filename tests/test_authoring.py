import nbformat
import pytest

from cnn_course.tools.authoring import (
    AuthoringError,
    generate,
    learner_version,
    main,
    out_of_date,
    repository_problems,
    strip_solutions,
)

REPOSITORY = "https://github.com/cnn-course/cnn-from-first-principles"


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


def test_committed_notebooks_install_the_configured_repository(root):
    assert repository_problems(root) == []


def _course(tmp_path, install_url: str, config_url: str = REPOSITORY):
    """A tiny course: _config.yml and one solution notebook, its learner copy generated."""
    (tmp_path / "_config.yml").write_text(f"title: t\nrepository:\n  url: {config_url}\n"
                                          "  branch: main\n", encoding="utf-8")
    (tmp_path / "solutions").mkdir()
    install = nbformat.v4.new_code_cell(
        "import importlib.util\n\nif importlib.util.find_spec('cnn_course') is None:\n"
        f'    %pip install --quiet "cnn_course @ git+{install_url}"')
    intro = nbformat.v4.new_markdown_cell("# Chapter 1")
    nbformat.write(nbformat.v4.new_notebook(cells=[intro, install]),
                   tmp_path / "solutions" / "01_x.ipynb")
    generate(tmp_path)
    return tmp_path


@pytest.mark.parametrize("url", [REPOSITORY, REPOSITORY + ".git", REPOSITORY + "/"])
def test_the_configured_repository_passes_the_check(tmp_path, capsys, url):
    course = _course(tmp_path, url)
    assert repository_problems(course) == []
    assert main(["check", "--root", str(course)]) == 0
    assert "install the repository named in _config.yml" in capsys.readouterr().out


def test_an_install_cell_naming_another_repository_is_reported(tmp_path, capsys):
    course = _course(tmp_path, "https://github.com/someone-else/fork")
    problems = repository_problems(course)
    assert problems == [
        f"{folder}/01_x.ipynb installs from https://github.com/someone-else/fork, but "
        f"_config.yml names the repository {REPOSITORY} (repository: url); make them the same"
        for folder in ("solutions", "notebooks")]
    assert out_of_date(course) == []  # the notebooks are in sync: only the repository differs
    assert main(["check", "--root", str(course)]) == 1
    assert "wrong repository: solutions/01_x.ipynb installs from" in capsys.readouterr().err


def test_a_notebook_without_an_install_cell_is_reported(tmp_path):
    course = _course(tmp_path, REPOSITORY)
    notebook = nbformat.read(course / "solutions" / "01_x.ipynb", as_version=4)
    notebook.cells = notebook.cells[:1]
    nbformat.write(notebook, course / "solutions" / "01_x.ipynb")
    generate(course)
    assert [p.split(" has ")[1][:15] for p in repository_problems(course)] == [
        "no install cell"] * 2


def test_execute_without_notebooks_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["execute"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m cnn_course.tools.authoring")
    assert "execute needs the solution notebooks to run" in err
