"""The decoder's rewrite with fixed statistics, on a small graph shaped like Kokoro's export."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from nls_gateway.engines import kokoro_graph

CHANNELS = 4


def _norm(x: str, name: str, scales: int) -> list[onnx.NodeProto]:
    """An instance norm as exported (ReduceMean, Sub, Mul, ReduceMean, Add, Sqrt, Div),
    then ``scales`` adaptive scales and shifts, each squared by Pow(·, 2)."""
    node = helper.make_node
    nodes = [
        node("ReduceMean", [x], [f"{name}_mean"], axes=[2]),
        node("Sub", [x, f"{name}_mean"], [f"{name}_centred"]),
        node("Mul", [f"{name}_centred", f"{name}_centred"], [f"{name}_square"]),
        node("ReduceMean", [f"{name}_square"], [f"{name}_variance"], axes=[2]),
        node("Add", [f"{name}_variance", "eps"], [f"{name}_variance_eps"]),
        node("Sqrt", [f"{name}_variance_eps"], [f"{name}_std"]),
        node("Div", [f"{name}_centred", f"{name}_std"], [f"{name}_normed"]),
    ]
    for k in range(scales):
        nodes += [
            node("Mul", [f"g{k}", f"{name}_normed"], [f"{name}_scaled{k}"]),
            node("Add", [f"{name}_scaled{k}", f"beta{k}"], [f"{name}_shifted{k}"]),
            node("Pow", [f"{name}_shifted{k}", "two"], [f"{name}_squared{k}"]),
        ]
    return nodes


def _decoder_like() -> onnx.ModelProto:
    """x normalised once for two resblocks (ONNX Runtime shares the norm between blocks
    that read the same input), and a dynamically quantised convolution of x normalised
    on its own; the squares summed."""
    rng = np.random.default_rng(0)

    def per_channel(name: str, offset: float) -> onnx.TensorProto:
        values = offset + rng.normal(size=(1, CHANNELS, 1)).astype(np.float32)
        return numpy_helper.from_array(values, name)

    node = helper.make_node
    weights = rng.integers(0, 255, size=(CHANNELS, CHANNELS, 3), dtype=np.uint8)
    conv = [
        node("DynamicQuantizeLinear", ["x"], ["xq", "x_scale", "x_zero"]),
        node("ConvInteger", ["xq", "w", "x_zero", "w_zero"], ["sum"], pads=[1, 1]),
        node("Add", ["sum", "bias"], ["biased"]),
        node("Cast", ["biased"], ["biased_float"], to=TensorProto.FLOAT),
        node("Mul", ["x_scale", "w_scale"], ["conv_scale"]),
        node("Mul", ["biased_float", "conv_scale"], ["conv"]),
    ]
    nodes = _norm("x", "shared", 2) + conv + _norm("conv", "own", 1)
    nodes += [
        node("Add", ["shared_squared0", "shared_squared1"], ["shared_sum"]),
        node("Add", ["shared_sum", "own_squared0"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "decoder_like",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, CHANNELS, None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(np.array(1e-5, np.float32), "eps"),
            numpy_helper.from_array(np.array(2.0, np.float32), "two"),
            numpy_helper.from_array(weights, "w"),
            numpy_helper.from_array(np.array(128, np.uint8), "w_zero"),
            numpy_helper.from_array(np.array(0.01, np.float32), "w_scale"),
            numpy_helper.from_array(np.arange(CHANNELS, dtype=np.int32).reshape(1, -1, 1), "bias"),
            per_channel("g0", 1.0),
            per_channel("beta0", 0.0),
            per_channel("g1", 1.0),
            per_channel("beta1", 0.0),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _session(model: onnx.ModelProto) -> Any:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_fixed_statistics_render_as_the_original_and_drop_the_passes_they_made_idle() -> None:
    original = _decoder_like()
    fixed, names = kokoro_graph._with_fixed_statistics(original, onnx)
    assert names == ["shared_mean", "shared_variance", "own_mean", "own_variance"]
    x = (3.0 + np.random.default_rng(1).normal(size=(1, CHANNELS, 50))).astype(np.float32)

    # The original's own statistics, given to the rewrite, give the original's output.
    meter = onnx.ModelProto()
    meter.CopyFrom(original)
    meter.graph.output.extend(
        helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names
    )
    expected, *norms = _session(meter).run(None, {"x": x})
    feed = dict(zip(names, norms, strict=True))
    feed.update(x=x, phase_offset=np.zeros((1, 1, 9), np.float32))
    (got,) = _session(fixed).run(None, feed)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)

    # Each norm is one Mul and one Add over the activations: x * a + b, and for the
    # convolution's, its int32 sum * (scale * a) + (bias * scale * a + b).
    consumers: dict[str, list[str]] = {}
    for n in fixed.graph.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n.op_type)
    assert sorted(consumers["x"]) == ["DynamicQuantizeLinear", "Mul", "Mul"]
    assert consumers["sum"] == ["Cast"]
    ops = [n.op_type for n in fixed.graph.node]
    assert "Pow" not in ops and "ReduceMean" not in ops and "biased" not in consumers
    # No square of x - mean is left; the Pow(·, 2)s are products.
    squares = [
        n.input[0] for n in fixed.graph.node if n.op_type == "Mul" and n.input[0] == n.input[1]
    ]
    assert squares == ["shared_shifted0", "shared_shifted1", "own_shifted0"]


def test_the_meter_is_opened_when_first_needed_and_once() -> None:
    opened: list[int] = []

    def open_meter() -> str:
        opened.append(1)
        return "meter session"

    split = kokoro_graph.SplitKokoro(None, None, open_meter, ["mean", "variance"])
    assert not opened  # loading the engine does not open it
    assert split._meter == "meter session" and split._meter == "meter session"
    assert opened == [1]
