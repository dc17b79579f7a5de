"""The JAX deep-model bridge: data sets, conv VAEs, objectives, training, disentanglement metrics.

Needs the optional extra: ``pip install -e ".[deep]"``.
"""
