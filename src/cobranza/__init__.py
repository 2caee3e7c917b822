"""cobranza: who in early delinquency self-cures through the recurring debit, and who needs collections."""

__version__ = "0.1.0"
