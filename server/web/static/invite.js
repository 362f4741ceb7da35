// The invite link carries its token after "#", which browsers never send to a server: put it into the form,
// then drop it from the address bar. Without JavaScript the person pastes it into the field.
document.addEventListener("DOMContentLoaded", function () {
  var field = document.getElementById("token");
  var token = window.location.hash.slice(1);
  if (field && token && !field.value) {
    try {
      field.value = decodeURIComponent(token);
    } catch (e) {
      field.value = token; // not percent-encoded after all
    }
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
});
