"""Reading real data formats and making ground-truth data.

``data_loaders`` knows nothing of the models in :mod:`neuro`; every simulator
in :mod:`data_loaders.simulate` returns the data together with the ground
truth it planted.
"""
