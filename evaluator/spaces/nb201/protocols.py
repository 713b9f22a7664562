"""How each proxy is computed on NAS-Bench-201, as the literature that judged it there does.

The field's figures for NB201 come from different protocols, and each proxy's rank correlation
depends on its own (measured on 200 random CIFAR-10 cells, README): the zero-cost-nas proxies
(Abdelfattah et al., ICLR 2021: `grad_norm`, `snip`, `synflow`) are computed at PyTorch's
default initialisation on a minibatch of real images with their labels, SynFlow on a copy of
the network without its BatchNorm layers and with higher scores better; NASWOT (Mellor et al.,
ICML 2021) at the default initialisation on real images; the Zen-score (Lin et al., ICCV 2021,
as RZ-NAS reports it on NB201) under Zen-NAS's own protocol, Gaussian weights and Gaussian
inputs. A proxy not named here (a plugin's, the combined proxy) gets the default
initialisation and the run's real data. No torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from nasagent.evaluator.spaces.base import (
    DEFAULT_INIT,
    GAUSSIAN,
    REAL_DATA,
    ZENNAS_FORM,
    ZERO_COST_FORM,
    ProxyProtocol,
)

ZERO_COST_NAS = ("zero-cost-nas (Abdelfattah et al., \"Zero-Cost Proxies for Lightweight NAS\", "
                 "ICLR 2021), its released code")
NASWOT = ("NASWOT (Mellor et al., \"Neural Architecture Search without Training\", ICML 2021)")
ZEN_NAS = "Zen-NAS (Lin et al., ICCV 2021), its released code, as RZ-NAS (ICML 2025) reports it"
NATS_COUNTS = "NATS-Bench's parameter and FLOP counts"

_ZERO_COST = ProxyProtocol(init=DEFAULT_INIT, data=REAL_DATA, form=ZERO_COST_FORM,
                           reference=ZERO_COST_NAS)

DEFAULT_PROTOCOL = _ZERO_COST
"""A proxy the table does not name: default initialisation, the run's real data."""

PROTOCOLS: Mapping[str, ProxyProtocol] = MappingProxyType({
    "gradnorm": _ZERO_COST,
    "snip": _ZERO_COST,
    "synflow": ProxyProtocol(init=DEFAULT_INIT, data=REAL_DATA, form=ZERO_COST_FORM,
                             batchnorm=False, higher_is_better=True, reference=ZERO_COST_NAS),
    "naswot": ProxyProtocol(init=DEFAULT_INIT, data=REAL_DATA, form=ZENNAS_FORM,
                            reference=NASWOT),
    "zen": ProxyProtocol(init=GAUSSIAN, data=GAUSSIAN, form=ZENNAS_FORM, reference=ZEN_NAS),
    "params": ProxyProtocol(init=DEFAULT_INIT, reference=NATS_COUNTS),
    "flops": ProxyProtocol(init=DEFAULT_INIT, reference=NATS_COUNTS),
})
"""The protocol of each built-in proxy on NB201."""


def protocol_of(proxy: str) -> ProxyProtocol:
    """The NB201 protocol of `proxy` (`DEFAULT_PROTOCOL` for one not in `PROTOCOLS`)."""
    return PROTOCOLS.get(proxy, DEFAULT_PROTOCOL)
