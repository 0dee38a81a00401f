"""Settling card payments after the request that began them: the reconcile job (in every
`serve` process, and `ecommerce payments reconcile`), the gateway's webhook and the admin's
view of payments. It joins the two kinds of payment (orders/card.py, wallet/charges.py)."""
