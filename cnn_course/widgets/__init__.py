"""Interactive explorers (ipywidgets) used in the notebooks."""

from cnn_course.widgets.conv_explorer import ConvExplorer, explore_convolution

__all__ = ["ConvExplorer", "explore_convolution"]
