/*
 * The sandbox wallet: a stand-in for WeChat's WeixinJSBridge, so that our pages can run
 * getBrandWCPayRequest outside WeChat. Load it from the sandbox
 * (<script src="{sandbox}/wechatpay/sandbox/jsbridge.js">); it talks back to the sandbox
 * that served it. The sandbox checks the prepay_id and the paySign before the cashier sheet
 * shows, as WeChat does; 支付 pays the order (and WeChat Pay, or 买单 for a 买单 order's
 * params, notifies our notify_url), 取消 and 支付失败 leave the order unpaid. The callback
 * gets WeChat's err_msg values.
 */
(function () {
  "use strict";
  if (window.WeixinJSBridge) { return; }
  var script = document.currentScript;
  var base = script ? script.src.replace(/\/jsbridge\.js(\?.*)?$/, "") : "/wechatpay/sandbox";
  var RESULT = "get_brand_wcpay_request:";

  function post(path, params) {
    // text/plain keeps the cross-origin request "simple": no CORS preflight needed.
    return fetch(base + path, {method: "POST", headers: {"Content-Type": "text/plain"},
                               body: JSON.stringify(params)})
      .then(function (response) { return response.json(); });
  }

  function yuan(fen) { return "¥" + (fen / 100).toFixed(2); }

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    // Styles go through the CSSOM: pages whose CSP has no style-src 'unsafe-inline' (ours)
    // drop a style set with setAttribute("style"), and the cashier sheet would show unstyled.
    Object.keys(attributes).forEach(function (name) {
      if (name === "style") { node.style.cssText = attributes[name]; } else { node.setAttribute(name, attributes[name]); }
    });
    if (text) { node.textContent = text; }
    return node;
  }

  function cashier(order, choose) {
    var overlay = element("div", {"id": "wechatpay-sandbox-cashier", "role": "dialog", "aria-modal": "true",
      "style": "position:fixed;inset:0;background:rgba(0,0,0,.55);display:flex;align-items:flex-end;" +
               "justify-content:center;z-index:2147483647;font-family:-apple-system,sans-serif"});
    var sheet = element("div", {"style": "background:#fff;width:100%;max-width:480px;border-radius:12px 12px 0 0;" +
                                         "padding:20px 20px 28px;text-align:center;box-sizing:border-box"});
    sheet.appendChild(element("div", {"style": "color:#888;font-size:13px"}, "微信支付（沙箱）"));
    sheet.appendChild(element("div", {"data-testid": "wechatpay-merchant", "style": "margin-top:8px;font-size:15px"},
                              order.description + " · 商户号 " + order.sub_mchid));
    sheet.appendChild(element("div", {"data-testid": "wechatpay-amount",
                                      "style": "margin:12px 0 20px;font-size:32px;font-weight:600"},
                              yuan(order.amount_total)));
    [["pay", "支付", "#07c160", "#fff"], ["fail", "支付失败", "#fff", "#fa5151"], ["cancel", "取消", "#fff", "#333"]]
      .forEach(function (button) {
        var node = element("button", {"type": "button", "id": "wechatpay-sandbox-" + button[0],
          "style": "display:block;width:100%;margin-top:10px;padding:12px;border-radius:8px;font-size:16px;" +
                   "border:1px solid #ddd;background:" + button[2] + ";color:" + button[3]}, button[1]);
        node.addEventListener("click", function () {
          overlay.parentNode.removeChild(overlay);
          choose(button[0]);
        });
        sheet.appendChild(node);
      });
    overlay.appendChild(sheet);
    document.body.appendChild(overlay);
  }

  function getBrandWCPayRequest(params, callback) {
    var done = function (outcome, detail) {
      var result = {err_msg: RESULT + outcome};
      if (detail) { result.err_desc = detail; }
      if (typeof callback === "function") { callback(result); }
    };
    post("/wallet/checkout", params).then(function (order) {
      if (order.err_msg) { return done("fail", order.err_desc); }
      cashier(order, function (choice) {
        if (choice === "cancel") { return done("cancel"); }
        if (choice === "fail") { return done("fail", "支付失败（沙箱模拟）"); }
        post("/wallet/pay", params).then(function (answer) {
          done(answer.err_msg === RESULT + "ok" ? "ok" : "fail", answer.err_desc);
        }, function () { done("fail", "网络错误"); });
      });
    }, function () { done("fail", "网络错误"); });
  }

  window.WeixinJSBridge = {
    invoke: function (api, params, callback) {
      if (api === "getBrandWCPayRequest") { return getBrandWCPayRequest(params, callback); }
      if (typeof callback === "function") { callback({err_msg: api + ":fail_not_supported_in_sandbox"}); }
    },
    on: function () {},
    call: function () {}
  };

  function ready() { document.dispatchEvent(new Event("WeixinJSBridgeReady")); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    setTimeout(ready, 0);
  }
})();
