# `bulletin serve` 公开页面的中文文字。

language-name = 中文

home-subscribe = 订阅
home-archive = 往期

not-found-title = 此链接无效
not-found-body = 链接可能不完整（有些邮件程序会截断长链接），或已不再使用。如要停止接收本通讯，请使用近期邮件中的退订链接，或回复该邮件告诉我们。
expired-title = 此确认链接已过期
expired-body = 确认链接的有效期为 { $days } 天。请重新订阅以获取新的链接。
stale-title = 此链接已失效
stale-body = 它已被使用、已被更新的链接取代，或您的订阅此后已有变化。未作任何更改。如需重新订阅，请使用订阅表单，我们会发送一封确认邮件。
unavailable-title = 请一分钟后再试
unavailable-body = 服务繁忙或正在维护。未作任何更改。
too-many-title = 请求过多
too-many-body = 请稍后再试。
too-large-title = 请求过大
bad-request-title = 无法读取此表单
bad-request-body = 请返回后重试。

unsubscribe-title = 退订 { $list }？
unsubscribe-body = 此地址将不再收到 { $list }。
unsubscribe-button = 退订
unsubscribed-title = 您已退订
unsubscribed-body = 您将不再收到 { $list } 的任何一期。
resubscribe-hint = 点错了？
resubscribe-button = 重新订阅
others-hint = 您仍在接收我们的另外 { $count } 个列表。
leave-all-button = 退出所有列表
resubscribed-title = 欢迎回来
resubscribed-body = 您已重新订阅 { $list }。
left-all-title = 您已退出所有列表
left-all-body = 我们不会再向您发送任何内容。
generic-unsubscribe-title = 退订
generic-unsubscribe-body = 我们发送的每封邮件末尾都有您的个人退订链接：请从收到的邮件中打开它，或使用邮件程序的退订按钮。
generic-preferences-body = 我们发送的每封邮件末尾都有您的个人偏好设置链接：请从收到的邮件中打开它，选择您的列表和语言。
test-copy-title = 这是一份测试副本
test-copy-body = 您打开的是某一期的测试副本中的链接，该副本由 bulletin preview --to 发送，用于发送前检查。在正式的一期中，此按钮会让读者退订该列表。未作任何更改：测试副本不会让任何人退订。

subscribe-title = 订阅
email-label = 电子邮件地址
list-label = 列表
honeypot-label = 请勿填写此栏
subscribe-button = 订阅
subscribe-note = 我们会发送一封确认邮件。我们绝不会分享您的地址。
no-lists = 目前还没有可订阅的列表。
bad-address = 这个地址似乎不正确，请检查。
check-inbox-title = 请查看收件箱
check-inbox-body = 如果此地址可以接收我们的通讯，一封带有确认链接的邮件正在发送中。您打开链接并确认后，订阅即开始。
confirm-title = 确认订阅
confirm-body = 按下按钮即可开始接收 { $list }。
confirm-button = 确认
confirmed-title = 订阅已确认
confirmed-body = 您将收到下一期 { $list }。

archive-title = 往期
archive-empty = 尚未发布任何一期。

prefs-title = 您的订阅
prefs-intro = 选择您希望从我们这里收到的内容。保存之前不会有任何更改。
prefs-lists-legend = 列表
prefs-name-label = 您的姓名
prefs-language-label = 我们的邮件和页面所用语言
prefs-save-button = 保存我的选择
prefs-saved = 您的选择已保存。
prefs-unchanged = 一切已与您的选择一致，无需保存。
prefs-leave-all-hint = 或者不再接收我们的任何内容：
prefs-blocklisted = 我们已不再向此地址发送邮件，因此无法在此加入列表；您仍可以退出列表。
prefs-bad-input = 无法保存：姓名须为一行且不超过 { $max } 个字符，语言须为 zh 或 pt-BR 这样的代码。未作任何更改。
prefs-test-copy-title = 偏好设置中心预览
prefs-test-copy-body = 您打开的是测试副本中的“管理偏好设置”链接。读者在这里会看到自己的列表，可以加入或退出每个列表、修改姓名和语言，或退出全部。测试副本不会保存任何内容。
