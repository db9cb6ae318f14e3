"""Pure physics functions shared by every simulator kind (as caustics' ``lenses/func``).

``grid`` pixel grids and padding; ``psf`` lenstronomy-convention Gaussian PSFs and convolution;
``noise`` CCD and count noise; ``profiles`` light profiles and ray shooting on batched tensors;
``cosmology`` distances, Einstein radii and deflection rescaling; ``rng`` per-image random
streams and exact stratified splits. No function here reads a config object or does I/O.
"""
