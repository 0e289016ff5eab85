"""config: the one params schema, its loading and the pipeline file layout.

Owns ``schema`` (the top-level pydantic model of params.yaml, ``validate_params``,
``model_config``, ``validate_config``), its sections (``sections_data``, ``sections_model``), their
field types (``fields``), the error messages (``messages``: ``ParamError``, shortened values),
YAML reading that refuses alias bombs (``documents``), ablation ladders (``ladders``), a
checkpoint's metadata checked against the schema (``checkpoint_meta``), ``params`` (``load_params``,
``run_stage``) and ``paths`` (``Paths``: every file a stage reads or writes). The allowed values of
every implemented choice come from the registries of ``core.choices``.

Never imports: data, readers, codecs, models, training, inference, evaluation, measure,
reporting, tools; torch.
"""
