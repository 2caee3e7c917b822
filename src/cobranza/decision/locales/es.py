"""Reason wording in Spanish, the collections team's language (`reason_language = "es"`)."""

from __future__ import annotations

# Colombian separators: 1.390.000 and 1,5.
THOUSANDS_SEPARATOR = "."
DECIMAL_SEPARATOR = ","
NO_ACTIVE_MANDATE = (
    "sin mandato de débito activo en la fecha de corte: el débito recurrente no puede "
    "pagarla, asignada por regla"
)
CONTROL_GROUP = (
    "grupo de control del experimento aleatorio: no contactar; se deja sin gestión para medir "
    "lo que logra la gestión de cobranza"
)
# La razón de la decisión, primera en toda obligación elegible: qué probabilidades y qué costos la
# decidieron (decision.policy).
MANAGEMENT_PAYS = (
    "gestionar paga: baja el riesgo de rodar de {p_no:.0%} a {p_act:.0%} sobre una pérdida por "
    "rodamiento de {loss:,.0f} pesos, {value:,.0f} pesos, más que los {action:,.0f} de una gestión "
    "(autocura por débito sin gestión {p_sc:.0%})"
)
MANAGEMENT_DOES_NOT_PAY = (
    "gestionar no paga: baja el riesgo de rodar de {p_no:.0%} a {p_act:.0%} sobre una pérdida por "
    "rodamiento de {loss:,.0f} pesos, {value:,.0f} pesos, menos que los {action:,.0f} de una "
    "gestión (autocura por débito sin gestión {p_sc:.0%})"
)
CAPACITY_LIMITED = (
    "equipo sin capacidad: gestionar pagaría {net:,.0f} pesos netos, menos que las obligaciones "
    "que conservan la capacidad (riesgo de rodar {p_no:.0%} sin gestión, {p_act:.0%} con ella)"
)

# El efecto de la gestión del modelo de rodamiento no está identificado (decision.policy): se
# asigna como hoy. {low}/{high}: el intervalo del 95% del cambio en los odds de rodar.
EFFECT_NOT_IDENTIFIED = (
    "el grupo de control aleatorio aún no muestra qué cambia la gestión de cobranza: con "
    "gestión los odds de rodar a más de 30 días cambian entre {low:+.0%} y {high:+.0%} "
    "(intervalo del 95%), lo que no muestra una reducción; se gestiona como hoy hasta que lo "
    "muestre"
)
EFFECT_NOT_ESTIMATED = (
    "el grupo de control aleatorio aún no muestra qué cambia la gestión de cobranza: muy pocas "
    "obligaciones sin gestión con resultado conocido para medirlo; se gestiona como hoy hasta "
    "que lo muestre"
)

# feature -> (reason template, words for a null value or None); `{value}` is the row's value,
# with a format spec (`{value:,.0f}`, `{value:.0%}`) formatted in this language's numbers.
REASONS: dict[str, tuple[str, str | None]] = {
    "product": ("producto {value}", None),
    "segment": ("segmento del cliente {value}", None),
    "days_past_due": ("{value:.0f} días de mora", None),
    "amount_past_due": ("{value:,.0f} pesos vencidos", None),
    "outstanding_balance": ("saldo de {value:,.0f} pesos", None),
    "past_due_to_installment": ("{value:.1f} cuotas vencidas", None),
    "past_due_to_outstanding": ("lo vencido es el {value:.0%} del saldo", None),
    "outstanding_to_original": ("debe aún el {value:.0%} del monto original", None),
    "days_past_due_prev_cut": (
        "{value:.0f} días de mora en el corte anterior",
        "sin corte anterior de la obligación",
    ),
    "installment_amount": ("cuota de {value:,.0f} pesos", None),
    "annual_rate": ("tasa anual de {value:.1f}%", None),
    "due_day": ("cuota con vencimiento el día {value:.0f}", None),
    "obligation_age_months": ("obligación de {value:.0f} meses", None),
    "months_to_maturity": (
        "faltan {value:.0f} meses para el vencimiento",
        "producto rotativo, sin fecha de vencimiento",
    ),
    "employment_type": ("empleo {value}", "tipo de empleo no declarado"),
    "age_band": ("rango de edad {value}", "fecha de nacimiento no declarada"),
    "client_tenure_months": ("cliente hace {value:.0f} meses", None),
    "monthly_income": ("ingreso declarado de {value:,.0f} pesos", "ingreso no declarado"),
    "installment_to_income": (
        "la cuota es el {value:.0%} del ingreso declarado",
        "ingreso no declarado",
    ),
    "n_products": ("{value:.0f} obligaciones abiertas", None),
    "mandate_age_months": (
        "mandato de débito de {value:.0f} meses",
        "ningún mandato de débito cubre el corte",
    ),
    "account_bank": (
        "cuenta de débito en banco {value}",
        "ningún mandato de débito cubre el corte",
    ),
    "account_type": ("cuenta de débito {value}", "ningún mandato de débito cubre el corte"),
    "debit_mode": ("modo de débito {value}", "ningún mandato de débito cubre el corte"),
    "debit_attempts_3m": ("{value:.0f} intentos de débito en los últimos 3 meses", None),
    "debit_success_rate_3m": (
        "{value:.0%} de los débitos exitosos en los últimos 3 meses",
        "sin intentos de débito en los últimos 3 meses",
    ),
    "debit_partial_rate_3m": (
        "{value:.0%} de los débitos parciales en los últimos 3 meses",
        "sin intentos de débito en los últimos 3 meses",
    ),
    "debit_attempts_6m": ("{value:.0f} intentos de débito en los últimos 6 meses", None),
    "debit_success_rate_6m": (
        "{value:.0%} de los débitos exitosos en los últimos 6 meses",
        "sin intentos de débito en los últimos 6 meses",
    ),
    "debit_partial_rate_6m": (
        "{value:.0%} de los débitos parciales en los últimos 6 meses",
        "sin intentos de débito en los últimos 6 meses",
    ),
    "debit_attempts_12m": ("{value:.0f} intentos de débito en los últimos 12 meses", None),
    "debit_success_rate_12m": (
        "{value:.0%} de los débitos exitosos en los últimos 12 meses",
        "sin intentos de débito en los últimos 12 meses",
    ),
    "debit_partial_rate_12m": (
        "{value:.0%} de los débitos parciales en los últimos 12 meses",
        "sin intentos de débito en los últimos 12 meses",
    ),
    "debit_rejects_insufficient_funds_12m": (
        "{value:.0f} débitos rechazados por fondos insuficientes en 12 meses",
        None,
    ),
    "debit_rejects_account_blocked_12m": (
        "{value:.0f} débitos rechazados por cuenta bloqueada en 12 meses",
        None,
    ),
    "debit_rejects_account_closed_12m": (
        "{value:.0f} débitos rechazados por cuenta cerrada en 12 meses",
        None,
    ),
    "debit_rejects_mandate_inactive_12m": (
        "{value:.0f} débitos rechazados por mandato inactivo en 12 meses",
        None,
    ),
    "debit_rejects_technical_12m": (
        "{value:.0f} débitos rechazados por falla técnica en 12 meses",
        None,
    ),
    "debit_insufficient_funds_share_12m": (
        "{value:.0%} de los rechazos fueron por fondos insuficientes",
        "sin débitos rechazados en 12 meses",
    ),
    "days_since_debit_success": (
        "último débito exitoso hace {value:.0f} días",
        "sin débito exitoso completo en 12 meses",
    ),
    "consecutive_debit_failures": ("{value:.0f} rechazos de débito seguidos", None),
    "debit_success_day_12m": (
        "los débitos suelen pasar el día {value:.0f}",
        "sin débito exitoso completo en 12 meses",
    ),
    "debit_day_minus_due_day": (
        "los débitos pasan {value:+.0f} días respecto al vencimiento",
        "sin débito exitoso completo en 12 meses",
    ),
    "payments_3m": ("{value:.0f} pagos en los últimos 3 meses", None),
    "amount_paid_3m": ("{value:,.0f} pesos pagados en los últimos 3 meses", None),
    "debit_payment_share_3m": (
        "{value:.0%} de lo pagado fue por débito en los últimos 3 meses",
        "sin pagos en los últimos 3 meses",
    ),
    "payments_6m": ("{value:.0f} pagos en los últimos 6 meses", None),
    "amount_paid_6m": ("{value:,.0f} pesos pagados en los últimos 6 meses", None),
    "debit_payment_share_6m": (
        "{value:.0%} de lo pagado fue por débito en los últimos 6 meses",
        "sin pagos en los últimos 6 meses",
    ),
    "payments_12m": ("{value:.0f} pagos en los últimos 12 meses", None),
    "amount_paid_12m": ("{value:,.0f} pesos pagados en los últimos 12 meses", None),
    "debit_payment_share_12m": (
        "{value:.0%} de lo pagado fue por débito en los últimos 12 meses",
        "sin pagos en los últimos 12 meses",
    ),
    "other_channel_payments_12m": ("{value:.0f} pagos por otros canales en 12 meses", None),
    "avg_balance_3m": (
        "saldo promedio de la cuenta de {value:,.0f} pesos",
        "sin datos de saldo de la cuenta de débito en los últimos meses completos (p. ej. cuenta en otro banco)",
    ),
    "avg_balance_6m": (
        "saldo promedio de 6 meses de {value:,.0f} pesos",
        "sin datos de saldo de la cuenta de débito en los últimos meses completos (p. ej. cuenta en otro banco)",
    ),
    "min_balance_3m": (
        "saldo mínimo de la cuenta de {value:,.0f} pesos",
        "sin datos de saldo de la cuenta de débito en los últimos meses completos (p. ej. cuenta en otro banco)",
    ),
    "balance_trend_3m": (
        "el saldo de la cuenta cambió {value:+,.0f} pesos",
        "menos de 6 meses completos de datos de saldo de la cuenta de débito",
    ),
    "end_balance_last_month": (
        "saldo a fin de mes de {value:,.0f} pesos",
        "sin datos de saldo de la cuenta de débito en los últimos meses completos (p. ej. cuenta en otro banco)",
    ),
    "balance_to_installment": (
        "el saldo cubre {value:.1f} cuotas",
        "sin datos de saldo de la cuenta de débito en los últimos meses completos (p. ej. cuenta en otro banco)",
    ),
    "inflow_to_installment_3m": (
        "los ingresos mensuales cubren {value:.1f} cuotas",
        "sin datos de saldo de la cuenta de débito en los últimos meses completos (p. ej. cuenta en otro banco)",
    ),
    "outflow_to_inflow_3m": (
        "gasta el {value:.0%} de lo que le ingresa",
        "sin datos de saldo de la cuenta de débito en los últimos meses completos (p. ej. cuenta en otro banco)",
    ),
    "payroll_regularity_6m": (
        "nómina en el {value:.0%} de los meses recientes",
        "sin datos de saldo de la cuenta de débito en los últimos meses completos (p. ej. cuenta en otro banco)",
    ),
    "account_months_6m": ("{value:.0f} meses de historia de la cuenta", None),
    "past_early_cuts_12m": ("{value:.0f} episodios previos de mora temprana en 12 meses", None),
    "past_cured_debit_12m": ("{value:.0f} episodios previos curados por el débito", None),
    "past_cured_other_12m": ("{value:.0f} episodios previos curados por otros canales", None),
    "past_rolled_31_12m": ("{value:.0f} episodios previos que pasaron de 30 días de mora", None),
    "actions_3m": ("{value:.0f} gestiones de cobranza en 3 meses", None),
    "actions_12m": ("{value:.0f} gestiones de cobranza en 12 meses", None),
    "contacts_12m": ("contactado {value:.0f} veces en 12 meses", None),
    "promises_12m": ("{value:.0f} promesas de pago en 12 meses", None),
    "days_since_last_action": (
        "última gestión de cobranza hace {value:.0f} días",
        "sin gestiones de cobranza en 12 meses",
    ),
    "last_action_outcome": (
        "resultado de la última gestión {value}",
        "sin gestiones de cobranza en 12 meses",
    ),
}

# Features whose codes read in the words of `cobranza.labels` (kind by feature).
LABELLED: dict[str, str] = {"product": "product", "segment": "segment"}

# Category codes in words, where a sentence would otherwise carry a code.
VALUES: dict[str, dict[str, str]] = {
    "account_bank": {"OWN": "propio", "OTHER": "de otra entidad (ACH)"},
    "account_type": {"SAVINGS": "de ahorros", "CHECKING": "corriente"},
    "debit_mode": {"FULL": "total", "PARTIAL_ALLOWED": "con débito parcial"},
    "employment_type": {
        "SALARIED": "asalariado",
        "INDEPENDENT": "independiente",
        "PENSIONER": "pensionado",
        "OTHER": "otro",
    },
    "last_action_outcome": {
        "CONTACTED": "contactado",
        "PROMISE_TO_PAY": "promesa de pago",
        "NO_CONTACT": "sin contacto",
        "WRONG_NUMBER": "número equivocado",
        "REFUSED": "se negó a pagar",
    },
}
