"""Executing the book's pages waits for kernel messages in short polls (see
``cnn_course.tools.kernel_polling``), so that a missed wake-up cannot stall the build."""

from cnn_course.tools.kernel_polling import install_short_polls


def setup(app):
    install_short_polls()
    return {"parallel_read_safe": True, "parallel_write_safe": True}
