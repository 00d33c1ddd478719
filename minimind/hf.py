"""Hugging Face transformers classes for exported MiniMind MoE models.

Dense models export to a stock ``LlamaForCausalLM`` (MiniMind2) or ``Qwen3ForCausalLM``
(MiniMind-3), and MiniMind-3-style MoE models to a stock ``Qwen3MoeForCausalLM``; none needs
anything from here. An MoE model that neither fits (shared experts, a routing bias) exports with
``model_type: minimind_moe``; importing this module
registers the config and model with transformers' Auto classes:

    import minimind.hf  # noqa: F401  (registers "minimind_moe")
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained("out/hf_moe")

The wrapped network is ``minimind.model.MiniMindLM`` itself, so the numbers are ours exactly; the
safetensors keys are MiniMind2's native key names (``model.layers.0.self_attn.q_proj.weight``).
"""

from __future__ import annotations

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedConfig, PreTrainedModel
from transformers.generation import GenerationMixin
from transformers.modeling_outputs import CausalLMOutputWithPast

from minimind.config import ModelConfig
from minimind.model import Backbone, MiniMindLM, MoEFeedForward, MoEGate, rope_tables

MODEL_TYPE = "minimind_moe"
_MODEL_FIELDS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
                 "qk_norm", "vocab_size", "intermediate_size", "ffn_rule", "rope_theta", "rms_norm_eps", "max_position_embeddings", "use_moe",
                 "n_routed_experts", "num_experts_per_tok", "n_shared_experts", "aux_loss_alpha", "seq_aux",
                 "norm_topk_prob", "router_balance", "router_bias_coeff")


class MiniMindMoEConfig(PreTrainedConfig):
    model_type = MODEL_TYPE

    vocab_size: int = 6400
    hidden_size: int = 512
    num_hidden_layers: int = 8
    num_attention_heads: int = 8
    num_key_value_heads: int = 2
    head_dim: int | None = None
    qk_norm: bool = False
    intermediate_size: int | None = None
    ffn_rule: str = "8/3"
    rope_theta: float = 1e6
    rms_norm_eps: float = 1e-5
    max_position_embeddings: int = 32768
    use_moe: bool = True
    n_routed_experts: int = 4
    num_experts_per_tok: int = 2
    n_shared_experts: int = 1
    aux_loss_alpha: float = 0.01
    seq_aux: bool = True
    norm_topk_prob: bool = True
    router_balance: str = "aux_loss"
    router_bias_coeff: float = 1e-3
    hidden_act: str = "silu"
    tie_word_embeddings: bool = True
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    pad_token_id: int | None = 0

    def to_model_config(self) -> ModelConfig:
        return ModelConfig(**{name: getattr(self, name) for name in _MODEL_FIELDS})

    @classmethod
    def from_model_config(cls, cfg: ModelConfig, **kwargs) -> MiniMindMoEConfig:
        return cls(**{name: getattr(cfg, name) for name in _MODEL_FIELDS}, **kwargs)


class MiniMindMoEForCausalLM(PreTrainedModel, GenerationMixin):
    """``MiniMindLM`` behind the transformers API: ``model.model`` / ``model.lm_head`` keep the
    native key names. Generation recomputes the whole prefix each step (no HF cache class)."""

    config_class = MiniMindMoEConfig
    base_model_prefix = "model"
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    _no_split_modules = ["Block"]

    def __init__(self, config: MiniMindMoEConfig):
        super().__init__(config)
        net = MiniMindLM(config.to_model_config())
        self.model = net.model
        self.lm_head = net.lm_head
        # The forward pass is MiniMindLM's own; keep the instance (not as a submodule, so the
        # state-dict keys stay model.* / lm_head.*).
        object.__setattr__(self, "_net", net)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module):
        # transformers builds the model on the meta device and leaves non-persistent buffers empty;
        # rebuild them here. Parameters come from the checkpoint (or MiniMindLM's own init).
        if isinstance(module, Backbone):
            cfg = self.config
            cos, sin = rope_tables(cfg.head_dim or cfg.hidden_size // cfg.num_attention_heads,
                                   cfg.max_position_embeddings, cfg.rope_theta)
            module.rope_cos.copy_(cos)
            module.rope_sin.copy_(sin)
        elif isinstance(module, MoEFeedForward):
            module.expert_counts.zero_()
        elif isinstance(module, MoEGate) and module.expert_bias is not None:
            module.bias_load.zero_()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def get_output_embeddings(self):
        return self.lm_head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, **kwargs) -> CausalLMOutputWithPast:
        net = self._net
        net.model, net.lm_head = self.model, self.lm_head  # follow .to()/load replacing modules
        out = net(input_ids)
        loss = None
        if labels is not None:
            shifted = labels[:, 1:].reshape(-1)
            loss = torch.nn.functional.cross_entropy(
                out.logits[:, :-1].float().reshape(-1, out.logits.size(-1)), shifted, ignore_index=-100)
        return CausalLMOutputWithPast(loss=loss, logits=out.logits)

    def prepare_inputs_for_generation(self, input_ids, **kwargs):
        return {"input_ids": input_ids}


def register() -> None:
    """Register ``minimind_moe`` with AutoConfig / AutoModelForCausalLM (idempotent)."""
    try:
        AutoConfig.register(MODEL_TYPE, MiniMindMoEConfig)
    except ValueError:  # already registered
        pass
    try:
        AutoModelForCausalLM.register(MiniMindMoEConfig, MiniMindMoEForCausalLM)
    except ValueError:
        pass


register()
