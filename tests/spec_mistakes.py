"""A learner's mistake shared by the layer-spec exercises of Chapters 3, 4 and 8: pool specs
unpacked as ``("pool", kernel, stride)``, the three-entry format of an older version."""


def three_entry_pool_shapes(input_shape, specs):
    """(C, H, W) after each layer, computed with pool specs read as three entries."""
    channels, height, width = input_shape
    shapes = []
    for spec in specs:
        if spec[0] == "conv":
            _, channels, kernel, stride, padding = spec
        else:
            _, kernel, stride = spec
            padding = 0
        height = (height + 2 * padding - kernel) // stride + 1
        width = (width + 2 * padding - kernel) // stride + 1
        shapes.append((channels, height, width))
    return shapes


def three_entry_flat_size(input_shape, specs):
    """The values per image after the last layer, with the same mistake."""
    channels, height, width = three_entry_pool_shapes(input_shape, specs)[-1]
    return channels * height * width
