"""Customer payments (SPEC P1, P2, P4, P5, P7, B2's order sweeps): orders on three channels,
verified notifications, the outbox of work that follows a payment, and the sweeps.

- `amounts`: the amount a customer types, in yuan, to integer fen (with Chinese reasons).
- `orders`: P1, one order per attempt, routed to WeChat Pay partner JSAPI, 买单 or Alipay.
- `channels`: the three channels behind one small interface (create, query, close).
- `settle`: the one path to PAID (a conditional write in one transaction with its outbox item).
- `notifications`: P2, the three channels' notifications as (status, headers, body).
- `outbox`: handing outbox items to the follow-up queue, its handler and its sweep.
- `sweeps`: P4 close and P5 catch-up through the sparse index of open orders.
- `queries`: P7, orders for the console and for the phone roles (admin, manager, clerk on shift).
- `phone_orders`: P7 on the phone, the store's and the merchant's order list pages.
- `totals`: C6 daily totals per scope, counted once per outbox item; `transactions`: C6
  filtered order and refund lists, the summary and the CSV export; `shift_summary`: the
  store's takings shown and sent at a clerk's clock-out.
"""
