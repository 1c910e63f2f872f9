# As palavras do tema integrado, em português.

dear = Olá
reader = a todos
in-this-edition = Nesta edição
read-more = Ler mais
further-reading = Para saber mais
documents = Documentos para baixar
why = Você recebe esta mensagem porque assinou
unsubscribe = Cancelar inscrição
preferences = Preferências
view-in-browser = Ver no navegador
contact = Contato
published-by = Publicado por
