/* The sandbox's stand-in for the AlipayJSBridge that the Alipay app injects into pages.
 *
 * AlipayJSBridge.call('tradePay', {tradeNO: '...'}, callback) shows a cashier with three
 * buttons, as a buyer would choose: 支付 (pays the trade at the sandbox, which notifies the
 * merchant; resultCode "9000"), 取消 ("6001", nothing paid) and 支付失败 ("4000").
 * Load it from the sandbox: <script src="{sandbox}/alipay/sandbox/jsbridge.js"></script>.
 */
(function () {
  'use strict';
  if (window.AlipayJSBridge) { return; }  // inside the real Alipay app: keep the real bridge
  var script = document.currentScript;
  var base = script ? script.src.replace(/\/sandbox\/jsbridge\.js(\?.*)?$/, '') : '/alipay';

  function element(tag, style, text) {
    var node = document.createElement(tag);
    node.style.cssText = style;
    if (text) { node.textContent = text; }
    return node;
  }

  function payAtSandbox(tradeNO) {
    return fetch(base + '/sandbox/wallet/pay', {method: 'POST', body: new URLSearchParams({trade_no: tradeNO})})
      .then(function (response) { return response.json(); })
      .catch(function () { return {resultCode: '6002', memo: '网络连接出错'}; });
  }

  function showCashier(tradeNO, done) {
    var overlay = element('div', 'position:fixed;inset:0;background:rgba(0,0,0,.45);z-index:2147483647;' +
      'display:flex;align-items:flex-end;font:15px/1.5 -apple-system,"PingFang SC",sans-serif');
    overlay.id = 'alipay-sandbox-cashier';
    var sheet = element('div', 'background:#fff;width:100%;border-radius:12px 12px 0 0;padding:20px 16px;' +
      'box-sizing:border-box;text-align:center');
    var title = element('div', 'color:#1677ff;font-weight:600', '支付宝收银台（沙箱）');
    var amount = element('div', 'font-size:32px;font-weight:600;margin:12px 0 4px', '');
    var detail = element('div', 'color:#888;font-size:13px;margin-bottom:16px', '交易号 ' + tradeNO);
    sheet.appendChild(title); sheet.appendChild(amount); sheet.appendChild(detail);
    var buttons = [['pay', '支付', '#1677ff', '#fff'], ['cancel', '取消', '#f2f2f2', '#333'],
                   ['fail', '支付失败', '#f2f2f2', '#d4380d']];
    buttons.forEach(function (spec) {
      var button = element('button', 'display:block;width:100%;margin:8px 0;padding:12px;border:0;' +
        'border-radius:8px;font-size:16px;background:' + spec[2] + ';color:' + spec[3], spec[1]);
      button.setAttribute('data-action', spec[0]);
      button.addEventListener('click', function () { choose(spec[0]); });
      sheet.appendChild(button);
    });
    overlay.appendChild(sheet);
    document.body.appendChild(overlay);

    fetch(base + '/sandbox/trades/' + encodeURIComponent(tradeNO))
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (trade) {
        if (trade) { amount.textContent = '¥' + trade.total_amount; detail.textContent = trade.subject + ' · ' + trade.merchant; }
      })
      .catch(function () {});

    var chosen = false;
    function finish(result) { overlay.remove(); done(result); }
    function choose(action) {
      if (chosen) { return; }
      chosen = true;
      if (action === 'pay') { payAtSandbox(tradeNO).then(finish); }
      else if (action === 'cancel') { finish({resultCode: '6001', memo: '用户中途取消'}); }
      else { finish({resultCode: '4000', memo: '订单支付失败'}); }
    }
  }

  window.AlipayJSBridge = {
    call: function (name, options, callback) {
      callback = typeof callback === 'function' ? callback : function () {};
      if (name !== 'tradePay') {
        setTimeout(function () { callback({error: 1, errorMessage: '沙箱不支持 ' + name}); }, 0);
        return;
      }
      if (!options || !options.tradeNO) {
        setTimeout(function () { callback({resultCode: '4000', memo: '缺少 tradeNO'}); }, 0);
        return;
      }
      showCashier(String(options.tradeNO), callback);
    }
  };

  function announceReady() { document.dispatchEvent(new Event('AlipayJSBridgeReady')); }
  // Pages either test window.AlipayJSBridge or wait for the event; fire it after their
  // scripts have run, as the real app does.
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', function () { setTimeout(announceReady, 0); }); }
  else { setTimeout(announceReady, 0); }
}());
