/* H7/H8: the pay page's amount check, the wallet call and the result page's polling. */
(function () {
  "use strict";
  var YUAN = /^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$/;

  function amountProblem(text, limitFen) {
    if (!text) { return "请输入金额"; }
    if (/^[0-9]+\.[0-9]{3,}$/.test(text)) { return "金额最多两位小数"; }
    if (!YUAN.test(text)) { return "金额只能是数字，例如 12.50"; }
    var parts = text.split("."), fen = parseInt(parts[0], 10) * 100 + parseInt(((parts[1] || "") + "00").slice(0, 2), 10);
    if (fen <= 0) { return "金额必须大于 0"; }
    if (fen > limitFen) { return "金额不能超过 " + (limitFen / 100).toFixed(2) + " 元"; }
    return "";
  }

  var form = document.getElementById("pay-form");
  if (form) {
    form.addEventListener("submit", function (event) {
      var input = document.getElementById("amount");
      var problem = amountProblem(input.value, parseInt(input.getAttribute("data-limit-fen"), 10));
      document.getElementById("amount-error").textContent = problem;
      if (problem) { event.preventDefault(); input.focus(); return; }
      document.getElementById("pay-submit").disabled = true;
    });
  }

  function whenReady(bridge, event, run) {
    if (window[bridge]) { run(); } else { document.addEventListener(event, run, false); }
  }

  var invoke = document.getElementById("pay-invoke");
  if (invoke) {
    var params = JSON.parse(invoke.getAttribute("data-params"));
    var result = invoke.getAttribute("data-result");
    var again = document.getElementById("pay-again");
    var status = document.getElementById("pay-status");
    var unfinished = function (text) { status.textContent = text; again.hidden = false; };
    var pay = invoke.getAttribute("data-wallet") === "alipay" ? function () {
      window.AlipayJSBridge.call("tradePay", {tradeNO: params.tradeNO}, function (answer) {
        if (answer.resultCode === "9000" || answer.resultCode === "8000") { location.replace(result); }
        else { unfinished(answer.resultCode === "6001" ? "已取消支付" : "支付未完成"); }
      });
    } : function () {
      window.WeixinJSBridge.invoke("getBrandWCPayRequest", params, function (answer) {
        var message = (answer && answer.err_msg) || "";
        if (message === "get_brand_wcpay_request:ok") { location.replace(result); }
        else { unfinished(message === "get_brand_wcpay_request:cancel" ? "已取消支付" : "支付未完成"); }
      });
    };
    var bridge = invoke.getAttribute("data-wallet") === "alipay" ? ["AlipayJSBridge", "AlipayJSBridgeReady"]
      : ["WeixinJSBridge", "WeixinJSBridgeReady"];
    again.addEventListener("click", function () { again.hidden = true; pay(); });
    whenReady(bridge[0], bridge[1], pay);
  }

  var poll = document.querySelector("[data-poll]");
  if (poll) {
    var tries = 0;
    var check = function () {
      fetch(poll.getAttribute("data-poll"), {cache: "no-store", credentials: "same-origin"})
        .then(function (response) { return response.json(); })
        .then(function (answer) {
          if (answer.state && answer.state !== "NOTPAY") { location.reload(); }
          else if (++tries < 40) { setTimeout(check, 1500); }
        })
        .catch(function () { if (++tries < 40) { setTimeout(check, 3000); } });
    };
    setTimeout(check, 1000);
  }

  var done = document.getElementById("pay-done");
  if (done) {
    done.addEventListener("click", function (event) {
      if (window.WeixinJSBridge && window.WeixinJSBridge.call) {
        event.preventDefault(); window.WeixinJSBridge.call("closeWindow");
      } else if (window.AlipayJSBridge && window.AlipayJSBridge.call) {
        event.preventDefault(); window.AlipayJSBridge.call("closeWebview");
      }
    });
  }
}());
