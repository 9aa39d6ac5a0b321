// The Chinese text of every error code the API answers (chalicelib/errors.py and the codes
// raised across chalicelib). The API's `message` stays English for integrators; the console
// shows only these texts. An unknown code still gets a Chinese text naming the code.

export const ERROR_TEXT = {
  // chalicelib/errors.py
  invalid_request: "请求有误，请检查后重试",
  invalid_field: "填写有误",
  unknown_field: "包含无法识别的字段",
  unsupported_media_type: "请求格式不受支持",
  method_not_allowed: "不支持此操作",
  unauthenticated: "请先登录",
  invalid_credentials: "邮箱或密码不正确",
  too_many_attempts: "尝试次数过多，请稍后再试",
  wechat_binding_required: "请先绑定微信买单服务商助手管理员的微信号",
  forbidden: "没有权限进行此操作",
  not_found: "记录不存在，或您没有权限查看",
  conflict: "操作与当前状态冲突，请刷新后重试",
  attempt_in_progress: "该订单的回调正在推送中，请稍后再重新推送",
  upstream_error: "上游系统（微信、买单或支付宝）暂时没有正常响应，请稍后重试",
  internal_error: "服务出现了问题，请稍后重试",
  gateway_refused: "请求未被受理（地址不存在、内容过大或请求过于频繁），请稍后重试",
  // sessions (C1)
  missing_token: "请先登录",
  invalid_token: "登录状态无效，请重新登录",
  session_expired: "登录已过期，请重新登录",
  session_revoked: "登录已失效（已在别处退出），请重新登录",
  email_taken: "该邮箱已注册，请直接登录",
  account_not_found: "找不到该账号，请核对账号 ID",
  // idempotency
  idempotency_key_reused: "重复提交的内容不一致，请刷新后重试",
  idempotency_request_in_progress: "上一次提交仍在处理中，请稍候",
  // C2 binding
  binding_race: "绑定状态刚刚发生了变化，请重新扫码",
  last_wechat_binding: "这是最后一个已绑定的微信号，不能解绑",
  // C3 providers
  provider_exists: "该服务商商户号已被添加",
  provider_claim_lost: "该服务商已由买单管理员同步到其他账号，本账号不能再操作它",
  provider_not_administered: "已绑定的微信号都不是该服务商在买单中的管理员：请先绑定该服务商管理员的微信号",
  maidan_admin_mismatch: "已绑定的微信号不是该服务商在买单服务商助手中的管理员",
  maidan_assistant_not_opened: "该微信号尚未开通买单服务商助手：请先在微信中打开买单服务商助手",
  // C4 sub-service-providers
  sub_service_provider_exists: "该账号已是此服务商的子服务商",
  sub_service_provider_has_merchants: "该子服务商名下还有商户，请先把这些商户改到其他子服务商",
  // C5 sub-merchants
  sub_merchant_exists: "该子商户号已被其他商户使用",
  version_conflict: "该记录已被修改（可能是别人或另一个窗口）。请重新加载后再改",
  maidan_not_opened: "该商户尚未开通微信买单：请商户在微信支付商户平台开通买单后再切换",
  alipay_not_configured: "服务商尚未配置支付宝（应用 ID、应用私钥、支付宝公钥），请先在服务商设置中填写",
  alipay_not_authorized: "商户尚未完成支付宝授权",
  alipay_authorization_expired: "商户的支付宝授权已过期，请重新授权",
  // C5.3 / C7 jobs
  sync_running: "已有一个同步任务正在进行",
  sync_starting: "同步任务正在启动，请稍候",
  sync_race: "同步状态刚刚发生了变化，请重试",
  nothing_to_retry: "没有可以重试的失败页",
  // 一码付 one-code setup (C5.7, H3-H6)
  last_admin: "这是该商户最后一位管理员，不能移除",
  last_refund_admin: "这是该商户最后一位有退款权限的管理员，不能移除或取消其退款权限",
  device_exists: "该门店已有相同编号的设备",
  role_required: "您在该商户或门店的角色无权进行此操作",
  // payments (P1)
  payment_refused: "这笔付款无法进行",
  wechat_pay_not_configured: "服务商尚未配置微信支付，暂时不能收款",
  alipay_not_authorized: "商户尚未授权支付宝，暂时不能用支付宝收款",
  sub_mchid_missing: "商户尚未填写微信支付子商户号，暂时不能收款",
  collection_code_not_usable: "收款码已停用",
  wallet_not_supported: "请用微信或支付宝扫码付款",
  attempt_reused: "这笔付款已提交过，请刷新页面",
  payer_missing: "无法识别付款人，请重新扫码",
  // P7 orders on the phone
  clerk_off_shift: "店员需要上班打卡后才能查看门店订单",
  // P6 refunds
  order_not_paid: "只有已支付的订单可以退款",
  refund_in_progress: "该订单有一笔退款正在处理，完成后才能再次退款",
  amount_exceeds_refundable: "退款金额超过了可退金额",
  order_changed: "订单刚刚发生了变化，请刷新后重试",
  // the console itself
  network_error: "网络连接失败，请检查网络后重试",
  yuan_not_a_number: "请填写以元为单位的金额，例如 5000 或 12.50",
  yuan_too_many_decimals: "金额最多两位小数（精确到分）",
  yuan_out_of_range: "单笔限额须在 0.01 至 1,000,000.00 元之间；留空表示不单独限额",
  refund_amount_missing: "请填写退款金额",
  refund_amount_out_of_range: "退款金额须在 0.01 元至可退金额之间",
  refund_reason_too_long: "退款原因不超过 80 个字",
};

/** The Chinese text of an ApiError (or any error): known code, else a fallback naming the code. */
export function errorText(error) {
  if (!error) return "";
  const text = ERROR_TEXT[error.code] || `操作失败（错误代码：${error.code || "unknown"}）`;
  return error.status >= 500 && error.requestId ? `${text}（请求编号 ${error.requestId}）` : text;
}
