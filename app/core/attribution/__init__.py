"""Seeing what a network learned: one method per module, one public entry point each.

``gradcam.grad_cam``, ``saliency.saliency`` (vanilla and SmoothGrad), ``occlusion.occlusion``
(made fast by ``local_forward`` on the chain of stages ``stage_graph`` reads from the forward),
``effective_rf.effective_receptive_field``, ``feature_vis.visualize_channel`` (stored and computed
in the background by ``feature_vis_store``), ``top_patches`` (precomputed from the held-out digits
and shipped) and ``random_filters.compare_first_layer_filters`` (with twins from ``random_init``).
``hooks`` owns the one forward hook the gradient methods need; ``colormap`` turns maps into PNGs;
``resources`` keeps what the server builds once per model; ``precompute`` backs the CLI.
All are pure torch/numpy and leave a model as they found it: no hooks left behind, parameters
untouched, train/eval mode unchanged.
"""
