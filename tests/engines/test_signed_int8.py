"""Dynamically quantised convolutions rewritten as signed-weight products give the same sums."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from nls_gateway.engines import signed_int8

CHANNELS_IN, CHANNELS_OUT = 6, 5


def _conv_model(
    kernel: int, dilation: int, weight_zero: int, *, stride: int = 1, group: int = 1
) -> onnx.ModelProto:
    """x (float) → DynamicQuantizeLinear → ConvInteger with uint8 weights → int32 sums."""
    rng = np.random.default_rng(kernel * 10 + dilation)
    weights = rng.integers(0, 256, size=(CHANNELS_OUT, CHANNELS_IN // group, kernel))
    pad = (kernel - 1) * dilation // 2
    graph = helper.make_graph(
        [
            helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "x_scale", "x_zero"]),
            helper.make_node(
                "ConvInteger",
                ["xq", "w", "x_zero", "w_zero"],
                ["sum"],
                kernel_shape=[kernel],
                dilations=[dilation],
                pads=[pad, pad],
                strides=[stride],
                group=group,
            ),
        ],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, CHANNELS_IN, None])],
        [helper.make_tensor_value_info("sum", TensorProto.INT32, None)],
        initializer=[
            numpy_helper.from_array(weights.astype(np.uint8), "w"),
            numpy_helper.from_array(np.array(weight_zero, dtype=np.uint8), "w_zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _run(model: onnx.ModelProto, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


@pytest.mark.skipif(
    not signed_int8.exact_on_this_cpu(),
    reason="this CPU's u8 × s8 products saturate, so the engines keep ConvInteger",
)
@pytest.mark.parametrize(
    ("kernel", "dilation", "weight_zero"), [(1, 1, 128), (3, 1, 60), (7, 3, 200), (11, 5, 0)]
)
def test_rewritten_convolution_gives_the_same_sums(
    kernel: int, dilation: int, weight_zero: int
) -> None:
    original = _conv_model(kernel, dilation, weight_zero)
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(original)

    assert signed_int8.with_signed_convolutions(rewritten) == 1

    ops = [node.op_type for node in rewritten.graph.node]
    assert "ConvInteger" not in ops and "MatMulInteger" in ops
    assert {t.name for t in rewritten.graph.initializer}.isdisjoint({"w", "w_zero"})
    x = np.random.default_rng(1).normal(size=(1, CHANNELS_IN, 40)).astype(np.float32)
    x[0, :, :3] = 0.0  # a zero run at the edge, where the padding's value shows
    for frames in (40, 2):  # frames fewer than the kernel's reach too
        np.testing.assert_array_equal(
            _run(rewritten, x[:, :, :frames]), _run(original, x[:, :, :frames])
        )


@pytest.mark.parametrize(("stride", "group"), [(2, 1), (1, 2)])
def test_strided_and_grouped_convolutions_are_left_alone(stride: int, group: int) -> None:
    model = _conv_model(3, 1, 128, stride=stride, group=group)
    before = model.SerializeToString()

    assert signed_int8.with_signed_convolutions(model) == 0
    assert model.SerializeToString() == before


def _two_convolutions() -> onnx.ModelProto:
    """conv → cast → per-channel scale → sin → + x → quantise → conv: what lies between
    two of Kokoro's convolutions, in small."""
    rng = np.random.default_rng(7)
    node = helper.make_node
    channels = CHANNELS_IN
    nodes = [
        node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
        node("ConvInteger", ["xq", "w1", "xz", "wz"], ["s1"], kernel_shape=[3], pads=[1, 1]),
        node("Cast", ["s1"], ["f1"], to=TensorProto.FLOAT),
        node("Mul", ["f1", "scale"], ["h"]),
        node("Sin", ["h"], ["snake"]),
        node("Add", ["snake", "x"], ["residual"]),
        node("DynamicQuantizeLinear", ["residual"], ["rq", "rs", "rz"]),
        node("ConvInteger", ["rq", "w2", "rz", "wz"], ["s2"], kernel_shape=[5], pads=[2, 2]),
    ]
    graph = helper.make_graph(
        nodes,
        "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, None])],
        [helper.make_tensor_value_info("s2", TensorProto.INT32, None)],
        initializer=[
            numpy_helper.from_array(
                rng.integers(0, 256, (channels, channels, 3)).astype(np.uint8), "w1"
            ),
            numpy_helper.from_array(
                rng.integers(0, 256, (channels, channels, 5)).astype(np.uint8), "w2"
            ),
            numpy_helper.from_array(np.array(100, dtype=np.uint8), "wz"),
            numpy_helper.from_array(
                rng.uniform(1e-3, 1e-2, (1, channels, 1)).astype(np.float32), "scale"
            ),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.mark.skipif(
    not signed_int8.exact_on_this_cpu(),
    reason="this CPU's u8 × s8 products saturate, so the engines keep ConvInteger",
)
def test_activations_stay_time_major_between_convolutions() -> None:
    original = _two_convolutions()
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(original)
    assert signed_int8.with_signed_convolutions(rewritten) == 2

    signed_int8.without_layout_round_trips(rewritten)

    # The second convolution reads the quantised residual in time-major form as it is.
    second_input = next(n for n in rewritten.graph.node if n.output[0] == "s2/time_major")
    assert second_input.op_type == "Identity"
    x = np.random.default_rng(2).normal(size=(1, CHANNELS_IN, 30)).astype(np.float32)
    np.testing.assert_array_equal(_run(rewritten, x), _run(original, x))
