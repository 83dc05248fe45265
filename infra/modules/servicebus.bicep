// Service Bus: the events topic the steps publish CloudEvents to, with example subscriptions
// filtered on the message's application properties (as sandbox/servicebus/Config.json has them
// locally), and the requests queue of the Service Bus front door. Local (SAS key) auth is off:
// only Entra identities holding a data role can send or receive.
param name string
param location string
param tags object
@description('Principal id of the app\'s identity.')
param principalId string
@description('Log Analytics workspace receiving the namespace\'s operational logs.')
param workspaceId string

// shared/settings.py GPUPROV_EVENTS_TOPIC default and functions/intake.py REQUESTS_QUEUE.
var eventsTopicName = 'gpu-provisioning-events'
var requestsQueueName = 'provisioning-requests'

// Built-in roles (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/integration):
// Azure Service Bus Data Sender 69a216fc-b8fb-44d8-bc22-1f3c2cd27a39, on the topic only.
var serviceBusDataSender = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39')
// Azure Service Bus Data Receiver 4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0, on the queue only.
var serviceBusDataReceiver = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0')

// Example subscriptions: `all` receives every event; the others one correlation filter each on
// the application properties every event carries (requestId, step, status). Service Bus
// creates every subscription with the rule `$Default` (TrueFilter) and adding another rule does
// not remove it: "Whenever a new subscription is created, a default rule is always added. The
// default rule is a TrueRuleFilter which will enable all messages in the topic to reach
// subscription" (.NET CreateRuleOptions.DefaultRuleName docs); Pulumi azure-native's DefaultRule
// resource ("the `$Default` rule that Azure automatically creates alongside every ServiceBus
// subscription"; pulumi-azure-native#4489, #4799); azure-sdk-for-java#37856;
// terraform-provider-azurerm#32452. So the filter is put on `$Default` itself (a PUT of that
// rule replaces its TrueFilter): the subscription then has that one rule, and filters.
var filteredSubscriptions = [
  { name: 'failures', ruleName: '$Default', properties: { status: 'failed' } }
  { name: 'completed', ruleName: '$Default', properties: { step: 'completed' } }
]
var subscriptionProperties = {
  lockDuration: 'PT1M'
  maxDeliveryCount: 10
  defaultMessageTimeToLive: 'P14D'
  deadLetteringOnMessageExpiration: true
}

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Standard' }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource eventsTopic 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' = {
  parent: namespace
  name: eventsTopicName
  properties: {
    // The event id is `{requestId}:{step}:{status}`: a replayed publish is dropped here.
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    defaultMessageTimeToLive: 'P14D'
    maxSizeInMegabytes: 1024
    supportOrdering: true
  }
}

resource allEvents 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = {
  parent: eventsTopic
  name: 'all'
  properties: subscriptionProperties
}

resource filteredEvents 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = [
  for subscription in filteredSubscriptions: {
    parent: eventsTopic
    name: subscription.name
    properties: subscriptionProperties
  }
]

resource filters 'Microsoft.ServiceBus/namespaces/topics/subscriptions/rules@2024-01-01' = [
  for (subscription, i) in filteredSubscriptions: {
    parent: filteredEvents[i]
    name: subscription.ruleName
    properties: {
      filterType: 'CorrelationFilter'
      correlationFilter: { properties: subscription.properties }
    }
  }
]

resource requestsQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: requestsQueueName
  properties: {
    // A rejected message is abandoned until its deliveries are spent, then dead-lettered.
    maxDeliveryCount: 5
    lockDuration: 'PT1M'
    defaultMessageTimeToLive: 'P14D'
    deadLetteringOnMessageExpiration: true
  }
}

resource sendEvents 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(eventsTopic.id, principalId, serviceBusDataSender)
  scope: eventsTopic
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: serviceBusDataSender
  }
}

resource receiveRequests 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(requestsQueue.id, principalId, serviceBusDataReceiver)
  scope: requestsQueue
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: serviceBusDataReceiver
  }
}

resource namespaceLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'namespace-logs'
  scope: namespace
  properties: {
    workspaceId: workspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
  }
}

output name string = namespace.name
// `<name>.servicebus.windows.net` (or the sovereign cloud's suffix), from the endpoint ARM reports.
output fullyQualifiedNamespace string = replace(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':443/', '')
output eventsTopicName string = eventsTopic.name
output requestsQueueName string = requestsQueue.name
