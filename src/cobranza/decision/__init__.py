"""Decision layer: the cost-based policy, batch and online scoring with reason codes, impact.

`policy` (the rule, pure NumPy), `scoring` (the `score` stage and `score_frame`), `online` (the
API's fast path), `attribution` and `reasons` (reason codes), `savings` (impact figures) and
`business_impact` (the `impact` stage). Import the module you need: this package imports none of
them, so that `policy` stays light for training and the API.
"""
