#!/usr/bin/env python3
"""Reads a TensorBoard log directory with TensorBoard's own reader and prints it as JSON.

Used by host/cli/tests/summary_tensorboard.rs to check that the event files torchlet's
SummaryWriter writes are what TensorBoard reads: every run under LOGDIR is loaded by
tensorboard.backend.event_processing's EventMultiplexer (one EventAccumulator per run, keeping
every event), and each scalar, image (PNG decoded by Pillow into pixels), histogram, text,
hparams summary and the graph is printed with its tag and step.

    python3 tools/tensorboard_read.py LOGDIR
    python3 tools/tensorboard_read.py --histogram-reference VALUES.json

The second form prints the histogram PyTorch's SummaryWriter.add_histogram(values) writes with
its default bins="tensorflow": torch.utils.tensorboard.summary.make_histogram, restated with
numpy only (CI has no torch), for an independent check of torchlet's buckets.

Needs the `tensorboard` package (pip install tensorboard), which brings numpy and Pillow.
"""

import io
import json
import sys


def default_bins():
    # torch.utils.tensorboard.writer.SummaryWriter.__init__: self.default_bins
    v = 1e-12
    buckets = []
    neg_buckets = []
    while v < 1e20:
        buckets.append(v)
        neg_buckets.append(-v)
        v *= 1.1
    return neg_buckets[::-1] + [0] + buckets


def reference_histogram(values):
    # torch.utils.tensorboard.summary.make_histogram(values.astype(float), bins, max_bins=None)
    import numpy as np

    values = np.asarray(values, dtype=np.float32).astype(float).reshape(-1)
    counts, limits = np.histogram(values, bins=default_bins())
    cum_counts = np.cumsum(np.greater(counts, 0))
    start, end = np.searchsorted(cum_counts, [0, cum_counts[-1] - 1], side="right")
    start = int(start)
    end = int(end) + 1
    counts = counts[start - 1 : end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start : end + 1]
    return {
        "min": float(values.min()),
        "max": float(values.max()),
        "num": float(len(values)),
        "sum": float(values.sum()),
        "sum_squares": float(values.dot(values)),
        "bucket_limit": [float(x) for x in limits],
        "bucket": [float(x) for x in counts],
    }


def read_logdir(logdir):
    from PIL import Image
    from google.protobuf import json_format
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.backend.event_processing import event_multiplexer
    from tensorboard.plugins.hparams import plugin_data_pb2
    from tensorboard.util import tensor_util

    keep_all = {ea.SCALARS: 0, ea.IMAGES: 0, ea.HISTOGRAMS: 0, ea.TENSORS: 0, ea.GRAPH: 0}
    mux = event_multiplexer.EventMultiplexer(size_guidance=keep_all)
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    runs = {}
    for run in sorted(mux.Runs()):
        acc = mux.GetAccumulator(run)
        tags = acc.Tags()
        out = {"scalars": {}, "images": {}, "histograms": {}, "texts": {}, "hparams": {}, "graph": None}
        for tag in tags["scalars"]:
            out["scalars"][tag] = [[e.step, e.wall_time, e.value] for e in acc.Scalars(tag)]
        for tag in tags["images"]:
            items = []
            for e in acc.Images(tag):
                img = Image.open(io.BytesIO(e.encoded_image_string))
                img.load()
                items.append(
                    {
                        "step": e.step,
                        "width": e.width,
                        "height": e.height,
                        "format": img.format,
                        "mode": img.mode,
                        "size": list(img.size),
                        "pixels": list(img.tobytes()),
                    }
                )
            out["images"][tag] = items
        for tag in tags["histograms"]:
            out["histograms"][tag] = [
                {
                    "step": e.step,
                    "min": e.histogram_value.min,
                    "max": e.histogram_value.max,
                    "num": e.histogram_value.num,
                    "sum": e.histogram_value.sum,
                    "sum_squares": e.histogram_value.sum_squares,
                    "bucket_limit": list(e.histogram_value.bucket_limit),
                    "bucket": list(e.histogram_value.bucket),
                }
                for e in acc.Histograms(tag)
            ]
        for tag in tags["tensors"]:
            meta = acc.SummaryMetadata(tag)
            if meta.plugin_data.plugin_name != "text":
                continue
            items = []
            for e in acc.Tensors(tag):
                array = tensor_util.make_ndarray(e.tensor_proto)
                items.append(
                    {
                        "step": e.step,
                        "shape": list(array.shape),
                        "text": [s.decode("utf-8") for s in array.reshape(-1)],
                    }
                )
            out["texts"][tag] = items
        try:
            hparams = acc.PluginTagToContent("hparams")
        except KeyError:  # no hparams summaries in this run
            hparams = {}
        for tag, content in hparams.items():
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
            out["hparams"][tag] = json_format.MessageToDict(data, preserving_proto_field_name=True)
        if tags["graph"]:
            graph = acc.Graph()
            nodes = []
            for node in graph.node:
                shapes = []
                if "_output_shapes" in node.attr:
                    shapes = [[d.size for d in s.dim] for s in node.attr["_output_shapes"].list.shape]
                nodes.append(
                    {
                        "name": node.name,
                        "op": node.op,
                        "input": list(node.input),
                        "output_shapes": shapes,
                        "attr": node.attr["attr"].s.decode("utf-8") if "attr" in node.attr else None,
                    }
                )
            out["graph"] = {"producer": graph.versions.producer, "nodes": nodes}
        runs[run] = out
    return {"runs": runs}


def main(argv):
    if len(argv) == 3 and argv[1] == "--histogram-reference":
        with open(argv[2]) as f:
            values = json.load(f)
        print(json.dumps(reference_histogram(values)))
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(read_logdir(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
