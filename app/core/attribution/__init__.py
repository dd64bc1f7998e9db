"""Seeing what a network learned: one method per module, one public entry point each.

``gradcam.grad_cam``, ``saliency.saliency`` (vanilla and SmoothGrad), ``occlusion.occlusion``,
``effective_rf.effective_receptive_field``, ``feature_vis.visualize_channel`` (with its disk store
and background jobs in ``feature_vis_store``), ``top_patches`` (precomputed, shipped) and
``random_filters.compare_first_layer_filters``. ``hooks`` owns the one forward hook the gradient
methods need; ``colormap`` turns maps into PNGs. All are pure torch/numpy and leave the model as
they found it: no hooks left behind, parameters untouched, train/eval mode unchanged.
"""
