"""The decoder's rewrite with fixed statistics, on a small graph shaped like Kokoro's export."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from nls_gateway.engines import kokoro_graph

CHANNELS = 4


def _adain_graph() -> onnx.ModelProto:
    """x → one instance norm (as exported: ReduceMean, Sub, Mul, ReduceMean, Add, Sqrt,
    Div) shared by two adaptive scales and shifts (as ONNX Runtime leaves it when two
    resblocks normalise the same input), each squared by Pow(·, 2), summed."""
    rng = np.random.default_rng(0)

    def per_channel(name: str, offset: float) -> onnx.TensorProto:
        values = offset + rng.normal(size=(1, CHANNELS, 1)).astype(np.float32)
        return numpy_helper.from_array(values, name)

    node = helper.make_node
    nodes = [
        node("ReduceMean", ["x"], ["mean"], axes=[2]),
        node("Sub", ["x", "mean"], ["centred"]),
        node("Mul", ["centred", "centred"], ["square"]),
        node("ReduceMean", ["square"], ["variance"], axes=[2]),
        node("Add", ["variance", "eps"], ["variance_eps"]),
        node("Sqrt", ["variance_eps"], ["std"]),
        node("Div", ["centred", "std"], ["normed"]),
    ]
    for k in (1, 2):
        nodes += [
            node("Mul", [f"g{k}", "normed"], [f"scaled{k}"]),
            node("Add", [f"scaled{k}", f"beta{k}"], [f"shifted{k}"]),
            node("Pow", [f"shifted{k}", "two"], [f"squared{k}"]),
        ]
    nodes.append(node("Add", ["squared1", "squared2"], ["y"]))
    graph = helper.make_graph(
        nodes,
        "adain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, CHANNELS, None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(np.array(1e-5, np.float32), "eps"),
            numpy_helper.from_array(np.array(2.0, np.float32), "two"),
            per_channel("g1", 1.0),
            per_channel("beta1", 0.0),
            per_channel("g2", 1.0),
            per_channel("beta2", 0.0),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _session(model: onnx.ModelProto) -> Any:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_fixed_statistics_render_as_the_original_and_drop_the_passes_they_made_idle() -> None:
    original = _adain_graph()
    fixed, names = kokoro_graph._with_fixed_statistics(original, onnx)
    assert names == ["mean", "variance"]
    x = (3.0 + np.random.default_rng(1).normal(size=(1, CHANNELS, 50))).astype(np.float32)

    # The original's own statistics, given to the rewrite, give the original's output.
    meter = onnx.ModelProto()
    meter.CopyFrom(original)
    meter.graph.output.extend(
        helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names
    )
    expected, mean, variance = _session(meter).run(None, {"x": x})
    phase = np.zeros((1, 1, 9), np.float32)
    feed = {"x": x, "mean": mean, "variance": variance, "phase_offset": phase}
    (got,) = _session(fixed).run(None, feed)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)

    # Each norm is x * a + b; no square of x - mean is left, and no Pow.
    ops = [n.op_type for n in fixed.graph.node]
    assert "Pow" not in ops and "ReduceMean" not in ops
    reading_x = sorted(n.op_type for n in fixed.graph.node if "x" in n.input)
    assert reading_x == ["Mul", "Mul"]
    squares = [n for n in fixed.graph.node if n.op_type == "Mul" and n.input[0] == n.input[1]]
    assert [n.input[0] for n in squares] == ["shifted1", "shifted2"]  # the Pow(·, 2)s
