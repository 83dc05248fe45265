// The provisioner's user-assigned managed identity: the app's only credential, for storage,
// Service Bus, Application Insights and ARM alike (AZURE_CLIENT_ID selects it).
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
