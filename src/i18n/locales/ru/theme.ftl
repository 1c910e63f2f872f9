# Слова встроенной темы на русском языке.

dear = Добрый день,
reader = коллеги
in-this-edition = В этом выпуске
read-more = Читать далее
further-reading = Подробнее
documents = Документы для скачивания
why = Вы получили это письмо, потому что подписаны на рассылку
unsubscribe = Отписаться
preferences = Настройки подписки
view-in-browser = Открыть в браузере
contact = Контакты
published-by = Издатель
