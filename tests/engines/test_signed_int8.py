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
