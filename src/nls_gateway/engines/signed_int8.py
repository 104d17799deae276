"""Dynamically quantised convolutions as matrix products with signed weights, where this CPU
multiplies uint8 × int8 exactly.

Kokoro's int8 export quantises every convolution as ``ConvInteger`` with **uint8** weights,
and ONNX Runtime runs that as a generic u8 × u8 GEMM: 6–8 ps per multiply-accumulate on
2 threads, 61 % of the vocoder's time. Its ``MatMulInteger`` with **int8** weights reaches
the CPU's u8 × s8 dot-product instructions (AVX-512 VNNI, AVX-VNNI, AMX): 0.6–0.8 ps on
the 2-core Xeon here. So each stride-1, ungrouped, "same"-padded ``ConvInteger`` with
constant weights becomes

    Transpose (N, C, T → N, T, C) → Pad (with the activations' zero point, as ConvInteger
    pads) → Gather of rows t + j·d for each tap j (im2col, N × T × K·C)
    → MatMulInteger with the weights as a (K·C) × C_out int8 matrix → Transpose back,

with each weight re-centred (``w − 128`` as int8, its zero point ``− 128`` too): the same
integers, so the same int32 sums, bit for bit. :func:`without_layout_round_trips` then
drops the Transposes where only elementwise work lies between two such products.

Where the CPU has no such instruction, MLAS multiplies u8 × s8 with VPMADDUBSW, whose int16
pair sums saturate. :func:`exact_on_this_cpu` checks one worst-case product against numpy
once per process, and callers leave the graph alone when it differs.

This module rewrites ONNX graphs only: it knows nothing of Kokoro, audio or the network.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

__all__ = ["exact_on_this_cpu", "with_signed_convolutions", "without_layout_round_trips"]

_ELEMENTWISE = frozenset(
    {"Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Sin", "Cos", "Cast", "LeakyRelu", "Relu",
     "Tanh", "Sigmoid", "Neg", "Abs", "Exp", "Reciprocal", "Erf", "Floor"}
)  # fmt: skip
"""Ops whose result does not depend on the layout of their (broadcast) operands."""
_PRODUCT, _TIME_MAJOR = "/product", "/time_major"  # suffixes of the rewrite's tensors


@functools.cache
def exact_on_this_cpu() -> bool:
    """True when ONNX Runtime's u8 × s8 ``MatMulInteger`` gives exact int32 sums here.

    The probe's every product is 255 × 127 or 255 × −128: any pair summed in int16 (the
    VPMADDUBSW path) saturates, so a CPU without exact u8 × s8 kernels fails it.
    """
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rows, depth, cols = 16, 256, 16
    a = np.full((rows, depth), 255, dtype=np.uint8)
    b = np.where(np.indices((depth, cols)).sum(axis=0) % 3 == 0, -128, 127).astype(np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [rows, depth])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [rows, cols])],
        initializer=[numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    got = session.run(None, {"a": a})[0]
    return bool(np.array_equal(got, a.astype(np.int32) @ b.astype(np.int32)))


def with_signed_convolutions(model: Any) -> int:
    """Rewrite ``model`` (an ``onnx.ModelProto``) in place as the module docstring says;
    return how many convolutions were rewritten.

    Strided, grouped or not "same"-padded convolutions and those whose weights or weight
    zero point are not uint8 constants are left as they are.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    constants = {tensor.name: tensor for tensor in graph.initializer}
    nodes: list[Any] = []
    added: list[Any] = []
    replaced: set[str] = set()

    def constant(values: Any, name: str, dtype: Any = np.int64) -> str:
        added.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    def add(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    rewritten = 0
    for node in graph.node:
        plan = _plan(node, constants)
        if plan is None:
            nodes.append(node)
            continue
        weights, zero, dilation, pad = plan
        out, c_in, kernel = weights.shape
        x, x_zero, name = node.input[0], node.input[2], node.output[0]
        replaced |= {node.input[1], node.input[3]}
        # Row j·C + c of the matrix multiplies input channel c at kernel tap j.
        matrix = (weights.astype(np.int16) - 128).transpose(2, 1, 0).reshape(kernel * c_in, out)
        matrix_name = constant(matrix, f"{name}/s8_weights", np.int8)
        zero_name = constant(zero.astype(np.int16) - 128, f"{name}/s8_zero", np.int8)

        columns = time_major = add("Transpose", [x], name + _TIME_MAJOR, perm=[0, 2, 1])
        if pad:
            pads = constant([0, pad, 0, 0, pad, 0], f"{name}/pads")
            columns = add("Pad", [columns, pads, x_zero], f"{name}/padded")
        if kernel > 1:
            # im2col as one Gather: for frame t, the padded rows t + j·d of every tap j.
            shape = add("Shape", [time_major], f"{name}/shape")
            frames = add("Gather", [shape, constant(1, f"{name}/one")], f"{name}/frames")
            t = add("Range", [constant(0, f"{name}/zero"), frames, f"{name}/one"], f"{name}/t")
            t = add("Unsqueeze", [t, constant([1], f"{name}/axis")], f"{name}/t_column")
            taps = constant([[j * dilation for j in range(kernel)]], f"{name}/taps")
            index = add("Add", [t, taps], f"{name}/index")
            columns = add("Gather", [columns, index], f"{name}/gathered", axis=1)
            rows = constant([0, -1, kernel * c_in], f"{name}/rows")
            columns = add("Reshape", [columns, rows], f"{name}/im2col")
        product = add("MatMulInteger", [columns, matrix_name, x_zero, zero_name], name + _PRODUCT)
        add("Transpose", [product], name, perm=[0, 2, 1])
        rewritten += 1
    if not rewritten:
        return 0
    still_read = {name for node in nodes for name in node.input}
    kept = [t for t in graph.initializer if t.name not in replaced or t.name in still_read]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept + added)
    return rewritten


def _plan(node: Any, constants: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, int, int] | None:
    """(weights, weight zero point, dilation, pad) of a ConvInteger to rewrite."""
    from onnx import TensorProto, helper, numpy_helper

    if node.op_type != "ConvInteger" or len(node.input) < 4:
        return None
    weights, zero = constants.get(node.input[1]), constants.get(node.input[3])
    if weights is None or zero is None or len(weights.dims) != 3:
        return None
    if weights.data_type != TensorProto.UINT8 or zero.data_type != TensorProto.UINT8:
        return None
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    kernel = int(weights.dims[2])
    (dilation,) = attrs.get("dilations", [1])
    pads = list(attrs.get("pads", [0, 0]))
    if attrs.get("group", 1) != 1 or list(attrs.get("strides", [1])) != [1]:
        return None
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        return None
    # Only "same" padding: the product then has as many frames as the input.
    if pads[0] != pads[1] or 2 * pads[0] != (kernel - 1) * dilation:
        return None
    zero_point = numpy_helper.to_array(zero)
    if zero_point.size != 1:
        return None
    return numpy_helper.to_array(weights), zero_point.reshape(()), int(dilation), pads[0]


def without_layout_round_trips(model: Any) -> None:
    """Drop the Transposes between convolutions rewritten by :func:`with_signed_convolutions`
    where only elementwise work lies between them (norms, snakes, residual sums, the next
    one's quantisation).

    Walking the graph in order, a tensor known in time-major form (a product, or what an
    elementwise node makes of one) stays so: an elementwise node that reads one runs on
    the time-major forms of its operands, each other operand transposed (a per-channel
    ``(1, C, 1)`` factor becomes ``(1, 1, C)``, cheaply) unless it is a single value; any
    other consumer gets the channel-major form back through one Transpose, made once.
    Every result is the same number as before, computed in another memory order. An
    operand of unknown shape is taken to have rank 3, as this export's activations and
    norm statistics do; a wrong guess fails the session's first run, it cannot change a
    result. On Kokoro's fixed-statistics decoder: 4.3 → 3.8 ms per frame, the same audio
    bit for bit. Where a norm reduces over the last axis (the text half's layer norms, the
    unchanged decoder's instance norms) the output moved by rounding once Transposes stood
    in the pattern (presumably ONNX Runtime fuses the norm only in its original order), and
    the dynamic quantisation magnified it (0.2 in a norm statistic of 49): not for those.
    """
    import onnx
    from onnx import helper

    graph = model.graph
    shapes: dict[str, list[int]] = {t.name: list(t.dims) for t in graph.initializer}
    inferred = onnx.shape_inference.infer_shapes(model).graph
    for value in [*inferred.value_info, *inferred.input]:
        if value.type.tensor_type.HasField("shape"):
            dims = value.type.tensor_type.shape.dim
            shapes[value.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in dims]
    time_major: dict[str, str] = {}  # channel-major name → its time-major tensor
    present = {t.name for t in graph.initializer} | {i.name for i in graph.input}
    nodes: list[Any] = []

    def transpose(source: str, target: str) -> str:
        nodes.append(helper.make_node("Transpose", [source], [target], perm=[0, 2, 1]))
        return target

    def in_time_major(name: str) -> str:
        if name not in time_major:
            time_major[name] = transpose(name, f"{name}/tm")
        return time_major[name]

    def single_value(name: str) -> bool:
        return name in shapes and all(d == 1 for d in shapes[name])

    def portable(name: str) -> bool:
        return name in time_major or single_value(name) or len(shapes.get(name, [0] * 3)) == 3

    for node in graph.node:
        reads_time_major = any(i in time_major for i in node.input)
        if node.op_type == "Transpose" and node.input[0].endswith(_PRODUCT):
            time_major[node.output[0]] = node.input[0]  # the rewrite's way back: dropped
            continue
        if (
            node.op_type == "Transpose"
            and node.output[0].endswith(_TIME_MAJOR)
            and reads_time_major
        ):
            nodes.append(helper.make_node("Identity", [time_major[node.input[0]]], node.output))
            continue
        elementwise = node.op_type in _ELEMENTWISE or (
            node.op_type == "DynamicQuantizeLinear"  # scale and zero point: one value each
        )
        if reads_time_major and elementwise and all(i == "" or portable(i) for i in node.input):
            inputs = [i if i == "" or single_value(i) else in_time_major(i) for i in node.input]
            outputs = [f"{node.output[0]}/tm", *node.output[1:]]
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            nodes.append(helper.make_node(node.op_type, inputs, outputs, name=node.name, **attrs))
            time_major[node.output[0]] = outputs[0]
            present.update(node.output[1:])
            continue
        for name in node.input:
            if name in time_major and name not in present:
                present.add(transpose(time_major[name], name))
        nodes.append(node)
        present.update(node.output)
    for output in graph.output:
        if output.name in time_major and output.name not in present:
            transpose(time_major[output.name], output.name)
    del graph.node[:]
    graph.node.extend(nodes)
