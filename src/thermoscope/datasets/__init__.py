"""Datasets: versioned ground-truth libraries, leak-free splits, augmentation, synthetic scenes.

Modules (import what you use; nothing is loaded here):

- ``hashing``: perceptual hashes and near-duplicate pairs (exact content ids of frames are
  ``thermoscope.storage.identity``);
- ``versions``: dataset items, immutable version manifests, ``diff`` and ``stats``;
- ``store``: a dataset in a local folder (frames once by content, annotations, versions);
- ``splits``: train/val/test splits that keep groups and near-duplicates together;
- ``augment``: thermal-aware augmentation of frames and their annotations;
- ``library``: the OK/NG ground-truth library with golden examples per product;
- ``synthetic``: the synthetic production line.
"""
