"""A TensorBoard dashboard of our own: every layer's snapshot layouts side by side, played over training.

TensorBoard finds it through the `tensorboard_plugins` entry point (setup.cfg) and shows it as a tab next to
the PROJECTOR, for runs whose snapshot tensors have layouts (bookmark files named by the run's projector
config). Modules, laid out like TensorBoard's example plugins: `metadata` (names, routes, limits),
`runs` (what one run offers, read through its config and its bookmarks with `bookmarks.py`, cached),
`plugin` (the `TBPlugin` and its routes), `static/` (the page: plain ES modules). docs/dashboard.md.
"""
