"""A local stand-in for WeChat, WeChat Pay, 买单 and Alipay. A development tool: never deployed."""
