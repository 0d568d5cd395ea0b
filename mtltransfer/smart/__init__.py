"""SMART in one home: spectral transfer of a source's singular subspaces.

``problem`` (the problem in the source's coordinates), ``admm`` (the solver and its
stationarity certificate), ``gamma`` (the magnitude pull's d-step) and ``tuning`` (lambda
path, structural ranks) take and return plain arrays; ``model`` (:class:`SMART`,
:class:`SMARTResults`) and ``magnitude`` (the fit with ``gamma > 0``) are the model layer.
The public names are exported by :mod:`mtltransfer`; this file imports nothing, so that
the solver modules never import the model layer through it.
"""
