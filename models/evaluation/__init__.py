"""livestems.models.evaluation: evaluation: BSSEval v4 and SI-SDR through the streaming path
(``livestems eval``), and the README's scores table.
"""
