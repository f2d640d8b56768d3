"""The numbers that steer initialization, named in one place.

:func:`scarlet2.initialize` reads these; its keyword arguments (``bright_snr``,
``point_threshold``, ...) are the choices a user makes per call, these the model's shape.
"""

#: A source's box reaches this many pixels beyond the radius where its light meets the noise.
BOX_MARGIN = 3
#: ``initialize``'s point_threshold where point or extended is chosen again after the fit
#: (``fit_dataset(select_points=True)``): point only when measured clearly smaller than the PSF
#: (noise scatters unresolved sources about 0), so compact galaxies start extended and can grow.
SELECTED_POINT_THRESHOLD = -0.15
#: Sources below this peak S/N in the detection image start as point sources.
MIN_EXTENDED_SNR = 5.0
#: Across observations, a source's size and shape are measured in the sharpest observation where
#: its peak S/N reaches this (else in the one where its peak S/N is highest).
MEASURE_MIN_SNR = 10.0
#: Half-light radius of a Gaussian in units of its sigma (sqrt(2 ln 2)): the measured size's r_e.
R_E_PER_SIGMA = 1.18
#: Smallest PSF-deconvolved sigma^2 (pixels^2) an extended source starts with.
MIN_SIGMA2 = 0.25
#: Single-Sersic sources start at this index.
SINGLE_SERSIC_N = 1.5
#: Bulge + disk sources: the bulge's index, share of the flux, and its size and shear as fractions
#: of the measured r_e and shear; the disk's index and size.
BULGE_SERSIC_N = 4.0
BULGE_FLUX_FRACTION = 0.3
BULGE_SIZE_FRACTION = 0.5
BULGE_SHEAR_FRACTION = 0.5
DISK_SERSIC_N = 1.0
DISK_SIZE_FRACTION = 1.3
#: Hold bulge + disk indices at those values (fit sizes, shapes and spectra only)? With both
#: free the components can trade roles and an index run to its bound; held, galaxies that are
#: not n = 4 + n = 1 fit worse (scarlet's psf_matched_sim: median |df/f| 0.09 -> 0.20). Off.
FIX_BULGE_DISK_INDEX = False
#: Measured shapes are clamped: distortion below this (a line has 1), reduced shear below this.
MAX_DISTORTION = 0.99
MAX_SHEAR = 0.6
#: Initial spectra are at least this fraction of their brightest band (a positive constraint
#: cannot start at 0); the catalog flags fits that end there (``flux_at_floor``).
SPECTRUM_FLOOR = 1e-3
#: Free-form starts keep at least this fraction of their peak in every pixel.
FREEFORM_FLOOR = 1e-3
#: The sky level's optimizer step, as a fraction of the band's noise rms.
SKY_STEP_FRACTION = 0.03
#: Sky levels are the median of the pixels within this many sigma (clipped iteratively).
SKY_CLIP_SIGMA = 2.5
#: Adaptive-moment iterations (the Gaussian weight follows the source).
MOMENT_ITERATIONS = 4
