// The login form: POST the password as JSON, then open the console.
// Relative URLs: the console's path is configuration, and this page lives at <path>/login.
"use strict";
const base = location.pathname.replace(/\/login\/?$/, "");
document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("login-error");
  error.textContent = "";
  const password = document.getElementById("password").value;
  let answer;
  try {
    answer = await fetch(base + "/api/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ password }),
      credentials: "same-origin",
    });
  } catch (exc) {
    error.textContent = "The gateway did not answer.";
    return;
  }
  if (answer.ok) {
    location.assign(base);
  } else if (answer.status === 429) {
    error.textContent = "Too many attempts; wait " + (answer.headers.get("retry-after") || "a few") + " s.";
  } else {
    error.textContent = "Wrong password.";
  }
});
