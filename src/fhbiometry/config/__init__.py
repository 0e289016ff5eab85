"""config: the one params schema, its loading and the pipeline file layout.

Owns ``schema`` (pydantic models of every key of params.yaml), ``params`` (``load_params``,
``ParamError``) and ``paths`` (``Paths``: every file a stage reads or writes).

Never imports: data, readers, codecs, models, training, inference, evaluation, measure,
reporting, tools; torch.
"""
