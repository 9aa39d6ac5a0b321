"""The local stack: moto server, infra bootstrap, chalice local, queue dispatcher, scheduler, sandbox."""
