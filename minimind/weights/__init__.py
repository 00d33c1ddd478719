"""Any MiniMind weights, read safely, described, and exported.

    load.py      load_weights: a .pth/.pt/.safetensors file, a run, a checkpoint or an HF directory
                 -> LoadedWeights (native keys, float32, config, what was inferred)
    read.py      reading one tensor file: weights_only torch.load or safetensors, one-line errors
    layouts.py   key layouts (native, earlier MiniMind) and the mapping between them
    infer.py     the ModelConfig: a .pth's sidecar, an HF config.json, the run beside a .pth, or shapes
    describe.py  what ``minimind inspect`` shows
    generate.py  a model, its tokenizer and a text sample from loaded weights
    export.py    Hugging Face and .pth export

Checkpoint directories themselves (which are complete, their sha256 checks) belong to
``minimind.checkpoint``; errors are ``minimind.errors.CheckpointError``.
"""

from minimind.errors import CheckpointError
from minimind.safe_load import safe_torch_load
from minimind.weights.describe import describe, tensor_table, training_summary
from minimind.weights.export import (
    EXPORT_MARKER,
    check_export_target,
    export_hf,
    export_pth,
    hf_family,
    hf_llama_config,
    hf_qwen3_config,
)
from minimind.weights.generate import build_model, find_tokenizer, generate_text
from minimind.weights.infer import config_from_hf, infer_config, parameter_counts, validate_shapes
from minimind.weights.layouts import DEFAULT_HEAD_DIM, EMBED, HEAD, detect_layout, native_to_v1, v1_to_native
from minimind.weights.load import LoadedWeights, load_weights
from minimind.weights.read import extract_state_dict, read_safetensors

__all__ = [
    "DEFAULT_HEAD_DIM", "EMBED", "EXPORT_MARKER", "HEAD", "CheckpointError", "LoadedWeights", "build_model",
    "check_export_target", "config_from_hf", "describe", "detect_layout", "export_hf", "export_pth",
    "extract_state_dict", "find_tokenizer", "generate_text", "hf_family", "hf_llama_config", "hf_qwen3_config", "infer_config", "load_weights",
    "native_to_v1", "parameter_counts", "read_safetensors", "safe_torch_load", "tensor_table",
    "training_summary", "v1_to_native", "validate_shapes",
]
