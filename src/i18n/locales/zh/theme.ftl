# 内置主题的中文用语。

dear = 您好
reader = 各位读者
in-this-edition = 本期内容
read-more = 阅读全文
further-reading = 延伸阅读
documents = 文件下载
why = 您收到此邮件，是因为您订阅了
unsubscribe = 退订
preferences = 管理订阅偏好
view-in-browser = 在浏览器中查看
contact = 联系方式
published-by = 出版方
