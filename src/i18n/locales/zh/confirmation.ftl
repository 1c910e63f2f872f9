# `bulletin serve` 发送的双重确认邮件，中文。

subject = 请确认订阅 { $list }
greeting = 您好：
asked = 有人（很可能是您）请求在此地址接收 { $list }。如要确认，请打开此链接并按下按钮：
validity = 此链接的有效期为 { $days } 天。如果您没有提出请求，请忽略此邮件，您将不会再收到任何内容。
button = 确认订阅
