// What every section may ask about the signed-in account: who it is and in which role it
// uses the console ("owner": its own providers; "sub_service_provider": read-only views of
// the providers it is attached to).
export const account = {me: null, role: "owner", belongsTo: false, owns: false};

export function readOnly() {
  return account.role === "sub_service_provider";
}

/** The `as=` query of the lists for the current role. */
export function asRole(query = new URLSearchParams()) {
  if (readOnly()) query.set("as", "sub_service_provider");
  return query;
}
