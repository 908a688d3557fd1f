"""Messages in the learner's language: how the language is chosen, how a template is
translated, and the catalog check that names every template without a current translation."""

from __future__ import annotations

import textwrap

import pytest

from cnn_course import messages
from cnn_course.messages import current_language, set_language, tr, using_language
from cnn_course.tools import message_catalogs


@pytest.fixture(autouse=True)
def _no_language_chosen(monkeypatch):
    monkeypatch.delenv("CNN_COURSE_LANG", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    set_language(None)
    yield
    set_language(None)


@pytest.mark.parametrize("value, expected", [("zh", "zh_CN"), ("zh_CN", "zh_CN"),
                                             ("zh-CN", "zh_CN"), ("en", "en"), ("EN", "en"),
                                             ("klingon", "en")])
def test_the_environment_chooses_the_language(monkeypatch, value, expected):
    monkeypatch.setenv("CNN_COURSE_LANG", value)
    assert current_language() == expected


def test_a_notebook_in_a_language_folder_speaks_that_language(monkeypatch, tmp_path):
    (tmp_path / "zh_CN").mkdir()
    monkeypatch.chdir(tmp_path / "zh_CN")          # kernels start in the notebook's folder
    assert current_language() == "zh_CN"
    monkeypatch.chdir(tmp_path)
    assert current_language() == "en"
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "zh_CN" / "01_convolution.ipynb"))
    assert current_language() == "zh_CN"
    monkeypatch.setenv("CNN_COURSE_LANG", "en")    # the learner's choice comes first
    assert current_language() == "en"


def test_set_language_refuses_an_unknown_language_and_using_language_restores():
    with pytest.raises(ValueError, match="has no messages in 'fr'"):
        set_language("fr")
    set_language("zh")
    with using_language("en"):
        assert current_language() == "en"
    assert current_language() == "zh_CN"


def test_tr_translates_and_fills_fields_and_falls_back_on_a_broken_translation(monkeypatch):
    template = "{what} has shape {got}, expected {expected}"
    with using_language("zh_CN"):
        assert tr(template, what="x", got=(1, 2), expected=(2, 1)) == \
            "x的形状是 (1, 2)，应为 (2, 1)"
    assert tr(template, what="x", got=(1, 2), expected=(2, 1)) == \
        "x has shape (1, 2), expected (2, 1)"
    monkeypatch.setitem(messages.catalog("zh_CN"), template, "{wrong_field}")
    with using_language("zh_CN"):
        assert tr(template, what="x", got=1, expected=2) == "x has shape 1, expected 2"


# ---- the catalog check --------------------------------------------------------------------

def _package(tmp_path, source: str, script: str = "") -> tuple:
    package = tmp_path / "cnn_course"
    (package / "widgets" / "js").mkdir(parents=True)
    (package / "lesson.py").write_text(textwrap.dedent(source), encoding="utf-8")
    (package / "widgets" / "js" / "explorer.js").write_text(script, encoding="utf-8")
    return package, tmp_path / "locales"


def test_every_template_needs_a_current_translation_with_the_same_fields(tmp_path):
    package, catalogs = _package(tmp_path, '''
        from cnn_course.messages import N_, tr
        HINT = N_("square each value")
        def check(n):
            return tr("all {n} cases right", n=n)
    ''', 'label.textContent = t("kernel size {k}", { k });')
    found = message_catalogs.problems("zh_CN", package, catalogs)
    assert sorted(p.message for p in found) == ["all {n} cases right", "kernel size {k}",
                                                "square each value"]
    assert all("not translated" in p.reason for p in found)

    message_catalogs.update("zh_CN", package=package, catalogs=catalogs)
    import polib

    path = catalogs / "zh_CN" / "lesson.po"
    catalog = polib.pofile(str(path))
    for entry in catalog:
        entry.msgstr = {"square each value": "把每个值平方",
                        "all {n} cases right": "全部 {count} 个用例正确"}[entry.msgid]
    catalog.save(str(path))
    js = polib.pofile(str(catalogs / "zh_CN" / "widgets.js.explorer.po"))
    js[0].msgstr = "卷积核大小 {k}"
    js.save(str(catalogs / "zh_CN" / "widgets.js.explorer.po"))
    found = message_catalogs.problems("zh_CN", package, catalogs)
    assert [(p.message, "fields differ" in p.reason) for p in found] == \
        [("all {n} cases right", True)]


def test_an_edited_template_is_named_and_update_keeps_its_old_translation_fuzzy(tmp_path):
    package, catalogs = _package(tmp_path, '''
        from cnn_course.messages import tr
        MESSAGE = tr("the bias is missing: add it to every output")
    ''')
    message_catalogs.update("zh_CN", package=package, catalogs=catalogs)
    import polib

    path = catalogs / "zh_CN" / "lesson.po"
    catalog = polib.pofile(str(path))
    catalog[0].msgstr = "缺少偏置：把它加到每个输出上"
    catalog.save(str(path))
    assert message_catalogs.problems("zh_CN", package, catalogs) == []

    source = package / "lesson.py"
    source.write_text(source.read_text().replace("every output", "every output value"))
    found = message_catalogs.problems("zh_CN", package, catalogs)
    assert [(p.page, p.message) for p in found] == \
        [("messages/lesson", "the bias is missing: add it to every output value")]
    message_catalogs.update("zh_CN", package=package, catalogs=catalogs)
    entry = polib.pofile(str(path))[0]
    assert entry.fuzzy and entry.msgstr == "缺少偏置：把它加到每个输出上"
    assert "fuzzy" in message_catalogs.problems("zh_CN", package, catalogs)[0].reason


def test_a_template_translated_differently_in_two_catalogs_is_named(tmp_path):
    package, catalogs = _package(tmp_path, '''
        from cnn_course.messages import tr
        LABEL = tr("vertical edge")
    ''')
    (package / "other.py").write_text(
        'from cnn_course.messages import tr\nX = tr("vertical edge")\n')
    message_catalogs.update("zh_CN", package=package, catalogs=catalogs)
    import polib

    for name, translation in (("lesson", "竖直边缘"), ("other", "垂直边缘")):
        path = catalogs / "zh_CN" / f"{name}.po"
        catalog = polib.pofile(str(path))
        catalog[0].msgstr = translation
        catalog.save(str(path))
    found = message_catalogs.problems("zh_CN", package, catalogs)
    assert found and all("translated differently in other.po" in p.reason for p in found)
    catalog = polib.pofile(str(catalogs / "zh_CN" / "other.po"))
    catalog[0].msgstr = "竖直边缘"
    catalog.save(str(catalogs / "zh_CN" / "other.po"))
    assert message_catalogs.problems("zh_CN", package, catalogs) == []


def test_a_template_built_at_run_time_is_named(tmp_path):
    package, catalogs = _package(tmp_path, '''
        from cnn_course.messages import tr
        def check(n, name):
            return tr(f"all {n} cases right") + tr("ok " + name) + tr(name)
    ''', 'a.title = t(`${n} steps`); b.title = t("one" + " two"); c.title = t(LABELS[x]);')
    found = message_catalogs.problems("zh_CN", package, catalogs)
    built = [p.reason.split(":")[0] for p in found if "built at run time" in p.reason]
    assert built == ["cnn_course/lesson.py", "cnn_course/lesson.py",
                     "cnn_course/widgets/js/explorer.js", "cnn_course/widgets/js/explorer.js"]


def test_every_message_of_the_package_has_a_current_chinese_translation():
    found = message_catalogs.problems("zh_CN")
    assert not found, "\n".join(map(str, found[:40])) + (
        "\nrun: python -m cnn_course.tools.translations update, then translate them")


# ---- figures -----------------------------------------------------------------------------

def test_figure_texts_are_looked_up_with_their_numbers_taken_out(monkeypatch):
    from cnn_course import figure_translation as figures

    assert figures.as_template("batch 64: 120 steps, lr 0.1") == \
        ("batch {0}: {1} steps, lr {2}", ["64", "120", "0.1"])
    assert figures.as_template("padded input 7x7, C3 map") == \
        ("padded input {0}x{1}, C3 map", ["7", "7"])
    assert not figures.needs_translation("−2.5") and not figures.needs_translation("$x^2$")
    assert figures.needs_translation("loss")
    monkeypatch.setitem(messages.catalog("zh_CN"), "lr {2}, batch {0}: {1} steps", "x")
    monkeypatch.setitem(messages.catalog("zh_CN"), "batch {0}: {1} steps, lr {2}",
                        "学习率 {2}，批量 {0}：{1} 步")
    assert figures.translate_text("batch 64: 120 steps, lr 0.1", "zh_CN") == \
        "学习率 0.1，批量 64：120 步"
    assert figures.translate_text("batch 64: 120 epochs", "zh_CN") is None


def test_a_recorded_machine_is_shown_in_the_readers_language():
    from cnn_course.device import translated_description

    recorded = "CPU: AMD EPYC 7B13, 2 cores, 2 torch threads"
    with using_language("zh_CN"):
        assert translated_description(recorded) == "CPU：AMD EPYC 7B13，2 核，torch 使用 2 个线程"
        assert translated_description("CUDA: NVIDIA H100") == "CUDA: NVIDIA H100"
    assert translated_description(recorded) == recorded


def test_saved_passing_verdicts_are_shown_in_the_readers_language():
    from cnn_course.checks import conv
    from cnn_course.checks.core import translated_verdicts
    from cnn_course.reference import conv as reference

    english = str(conv.run_check("conv_params", reference.conv_params))
    printed = f"{english}\nsome other line\n❌ conv_params: case \"x\": wrong."
    with using_language("zh_CN"):
        chinese = str(conv.run_check("conv_params", reference.conv_params))
        assert translated_verdicts(printed) == \
            f"{chinese}\nsome other line\n❌ conv_params: case \"x\": wrong."
    assert chinese != english and translated_verdicts(printed) == printed
