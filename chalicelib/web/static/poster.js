// The poster page's 打印 button: the browser's print dialog (the page's CSP allows no inline script).
document.getElementById("print").addEventListener("click", () => window.print());
