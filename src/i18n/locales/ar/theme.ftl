# كلمات القالب المدمج باللغة العربية.

dear = مرحبًا
reader = بالقرّاء الكرام
in-this-edition = في هذا العدد
read-more = اقرأ المزيد
further-reading = للاستزادة
documents = وثائق للتنزيل
why = تصلك هذه الرسالة لأنك مشترك في
unsubscribe = إلغاء الاشتراك
preferences = إدارة التفضيلات
view-in-browser = اعرض الرسالة في المتصفح
contact = للتواصل
published-by = صادر عن
