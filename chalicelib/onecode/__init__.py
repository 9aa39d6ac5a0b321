"""一码付 one-code setup (SPEC C5.7, H1 for its codes, H3-H6): a provider hands a merchant two
codes, and the merchant's admins, store managers and clerks set up everything else from
WeChat.

- `models`: merchant admins, stores, staff, devices, shifts (tables in infra/template.yaml).
- `fields`: what the phone forms accept, with the reason in Chinese when they do not.
- `access`: which role a WeChat user holds where (one GetItem each, strongly consistent).
- `setup`: C5.7, the merchant's two codes, issued when the provider first asks for them.
- `admins`, `stores`, `staff`, `devices`: what each role changes, every change conditional
  and audited with who made it.
- `activation`: turning a scanned activation code into a role, exactly once.
- `pages`: the H5 pages (server-rendered), `router`: H1 for these code kinds.
"""
