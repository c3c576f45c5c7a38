"""The one path from a part's file to its verdict and draft annotations.

decode (``decode_bytes`` / ``decode_path`` → ``DecodedPart``: frames, content ids, facts) →
align → recipe rules + a model (``PartModel``) → verdict → findings (``Pipeline.inspect_part``)
→ draft annotations (``Pipeline.drafts``). The CLI (``batch.inspect_files``), the server's
ingest and the edge agent all call these, so a file gives the same findings through each.
"""

from thermoscope.pipeline.decode import DecodedPart, decode_bytes, decode_path
from thermoscope.pipeline.errors import PipelineError
from thermoscope.pipeline.part import MODEL_RULE_PREFIX, Part, PartModel, Pipeline

__all__ = [
    "MODEL_RULE_PREFIX",
    "DecodedPart",
    "Part",
    "PartModel",
    "Pipeline",
    "PipelineError",
    "decode_bytes",
    "decode_path",
]
